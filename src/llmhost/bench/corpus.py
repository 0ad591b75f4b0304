"""Real English text that benchmark prompts are cut from (public-domain works, quoted in full or in part).

Prompts are slices of this text at different offsets, so no two requests share more than the chat template
as a prefix and the engine's prompt cache cannot skip their prefill.
"""

from __future__ import annotations

PASSAGES: tuple[str, ...] = (
    # Shakespeare, Sonnet 18
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate: Rough winds do shake the "
    "darling buds of May, And summer's lease hath all too short a date; Sometime too hot the eye of heaven shines, "
    "And often is his gold complexion dimm'd; And every fair from fair sometime declines, By chance or nature's "
    "changing course untrimm'd; But thy eternal summer shall not fade, Nor lose possession of that fair thou ow'st; "
    "Nor shall Death brag thou wander'st in his shade, When in eternal lines to time thou grow'st: So long as men "
    "can breathe or eyes can see, So long lives this, and this gives life to thee.",
    # Shakespeare, Sonnet 29
    "When, in disgrace with fortune and men's eyes, I all alone beweep my outcast state, And trouble deaf heaven "
    "with my bootless cries, And look upon myself and curse my fate, Wishing me like to one more rich in hope, "
    "Featured like him, like him with friends possess'd, Desiring this man's art and that man's scope, With what I "
    "most enjoy contented least; Yet in these thoughts myself almost despising, Haply I think on thee, and then my "
    "state, Like to the lark at break of day arising From sullen earth, sings hymns at heaven's gate; For thy sweet "
    "love remember'd such wealth brings That then I scorn to change my state with kings.",
    # Shakespeare, Sonnet 73
    "That time of year thou mayst in me behold When yellow leaves, or none, or few, do hang Upon those boughs which "
    "shake against the cold, Bare ruin'd choirs, where late the sweet birds sang. In me thou see'st the twilight of "
    "such day As after sunset fadeth in the west, Which by and by black night doth take away, Death's second self, "
    "that seals up all in rest. In me thou see'st the glowing of such fire That on the ashes of his youth doth lie, "
    "As the death-bed whereon it must expire, Consumed with that which it was nourish'd by. This thou perceivest, "
    "which makes thy love more strong, To love that well which thou must leave ere long.",
    # Shakespeare, Sonnet 116
    "Let me not to the marriage of true minds Admit impediments. Love is not love Which alters when it alteration "
    "finds, Or bends with the remover to remove: O no; it is an ever-fixed mark, That looks on tempests and is "
    "never shaken; It is the star to every wandering bark, Whose worth's unknown, although his height be taken. "
    "Love's not Time's fool, though rosy lips and cheeks Within his bending sickle's compass come; Love alters not "
    "with his brief hours and weeks, But bears it out even to the edge of doom. If this be error and upon me proved, "
    "I never writ, nor no man ever loved.",
    # Lincoln, the Gettysburg Address
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
    "Liberty, and dedicated to the proposition that all men are created equal. Now we are engaged in a great civil "
    "war, testing whether that nation, or any nation so conceived and so dedicated, can long endure. We are met on "
    "a great battle-field of that war. We have come to dedicate a portion of that field, as a final resting place "
    "for those who here gave their lives that that nation might live. It is altogether fitting and proper that we "
    "should do this. But, in a larger sense, we can not dedicate, we can not consecrate, we can not hallow this "
    "ground. The brave men, living and dead, who struggled here, have consecrated it, far above our poor power to "
    "add or detract. The world will little note, nor long remember what we say here, but it can never forget what "
    "they did here. It is for us the living, rather, to be dedicated here to the unfinished work which they who "
    "fought here have thus far so nobly advanced. It is rather for us to be here dedicated to the great task "
    "remaining before us, that from these honored dead we take increased devotion to that cause for which they gave "
    "the last full measure of devotion, that we here highly resolve that these dead shall not have died in vain, "
    "that this nation, under God, shall have a new birth of freedom, and that government of the people, by the "
    "people, for the people, shall not perish from the earth.",
    # Dickens, A Tale of Two Cities (opening)
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, "
    "it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing "
    "before us, we were all going direct to Heaven, we were all going direct the other way; in short, the period "
    "was so far like the present period, that some of its noisiest authorities insisted on its being received, for "
    "good or for evil, in the superlative degree of comparison only.",
    # Austen, Pride and Prejudice (opening)
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of "
    "a wife. However little known the feelings or views of such a man may be on his first entering a neighbourhood, "
    "this truth is so well fixed in the minds of the surrounding families, that he is considered as the rightful "
    'property of some one or other of their daughters. "My dear Mr. Bennet," said his lady to him one day, "have '
    'you heard that Netherfield Park is let at last?" Mr. Bennet replied that he had not. "But it is," returned '
    'she; "for Mrs. Long has just been here, and she told me all about it." Mr. Bennet made no answer. "Do not '
    'you want to know who has taken it?" cried his wife impatiently. "You want to tell me, and I have no '
    'objection to hearing it." This was invitation enough.',
    # The Declaration of Independence (preamble)
    "When in the Course of human events, it becomes necessary for one people to dissolve the political bands which "
    "have connected them with another, and to assume among the powers of the earth, the separate and equal station "
    "to which the Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of mankind "
    "requires that they should declare the causes which impel them to the separation. We hold these truths to be "
    "self-evident, that all men are created equal, that they are endowed by their Creator with certain unalienable "
    "Rights, that among these are Life, Liberty and the pursuit of Happiness. That to secure these rights, "
    "Governments are instituted among Men, deriving their just powers from the consent of the governed.",
    # Melville, Moby-Dick (opening)
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and "
    "nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of "
    "the world. It is a way I have of driving off the spleen and regulating the circulation. Whenever I find myself "
    "growing grim about the mouth; whenever it is a damp, drizzly November in my soul; whenever I find myself "
    "involuntarily pausing before coffin warehouses, and bringing up the rear of every funeral I meet; and "
    "especially whenever my hypos get such an upper hand of me, that it requires a strong moral principle to "
    "prevent me from deliberately stepping into the street, and methodically knocking people's hats off, then, I "
    "account it high time to get to sea as soon as I can.",
)

TEXT = " ".join(PASSAGES)


def excerpt(offset: int, chars: int) -> str:
    """``chars`` characters of the corpus from ``offset`` (wrapping around), starting at a word."""
    start = offset % len(TEXT)
    start = TEXT.find(" ", start) + 1 or 0
    repeats = chars // len(TEXT) + 2
    return (TEXT[start:] + " " + (TEXT + " ") * repeats)[:chars]

"""The hardware advisor: memory fit, recommendations with evidence, a score, efficiency and cost."""

"""placement.plan: which engines to unload so that a model fits (a pure function, no engines)."""

from __future__ import annotations

from llmhost.engines.placement import Plan, Resident, eviction_order, plan

HOST = "host"


def resident(name: str, mib: float = 100.0, **kwargs: object) -> Resident:
    charges = kwargs.pop("charges", None) or {HOST: mib}
    return Resident(name=name, charges=charges, **kwargs)  # type: ignore[arg-type]


# --- no eviction needed -----------------------------------------------------------------------------


def test_fits_without_evicting() -> None:
    result = plan({HOST: 100}, {HOST: 500}, [resident("a", 200), resident("b", 100)])
    assert result == Plan(fits=True, evict=[], free_after={HOST: 200}, best_possible={HOST: 500})


def test_fits_exactly_at_the_budget() -> None:
    result = plan({HOST: 300}, {HOST: 500}, [resident("a", 200)])
    assert result.fits and result.evict == []


def test_empty_host_fits_anything_up_to_the_budget() -> None:
    assert plan({HOST: 500}, {HOST: 500}, []).fits
    assert not plan({HOST: 500.1}, {HOST: 500}, []).fits


# --- eviction order ---------------------------------------------------------------------------------


def test_lowest_priority_goes_first_even_when_most_recently_used() -> None:
    residents = [
        resident("important-old", priority=5, last_used=1.0),
        resident("cheap-new", priority=0, last_used=99.0),
    ]
    result = plan({HOST: 100}, {HOST: 200}, residents)
    assert result.fits
    assert result.evict == ["cheap-new"]


def test_equal_priority_least_recently_used_goes_first() -> None:
    residents = [
        resident("recent", last_used=30.0),
        resident("oldest", last_used=10.0),
        resident("middle", last_used=20.0),
    ]
    assert plan({HOST: 100}, {HOST: 300}, residents).evict == ["oldest"]
    assert plan({HOST: 200}, {HOST: 300}, residents).evict == ["oldest", "middle"]
    assert plan({HOST: 300}, {HOST: 300}, residents).evict == ["oldest", "middle", "recent"]


def test_idle_goes_before_busy_whatever_the_priority() -> None:
    residents = [
        resident("busy-cheap", priority=-10, last_used=1.0, busy=True),
        resident("idle-important", priority=10, last_used=50.0),
    ]
    assert plan({HOST: 100}, {HOST: 200}, residents).evict == ["idle-important"]
    # when idle ones are not enough, busy ones follow (they finish their requests first)
    assert plan({HOST: 200}, {HOST: 200}, residents).evict == ["idle-important", "busy-cheap"]


def test_busy_engines_ordered_by_priority_then_lru_among_themselves() -> None:
    residents = [
        resident("busy-b", priority=1, last_used=1.0, busy=True),
        resident("busy-a2", priority=0, last_used=2.0, busy=True),
        resident("busy-a1", priority=0, last_used=1.5, busy=True),
    ]
    assert [r.name for r in eviction_order(residents)] == ["busy-a1", "busy-a2", "busy-b"]


def test_eviction_order_is_the_full_policy_and_drops_pinned() -> None:
    residents = [
        resident("pinned", priority=-100, last_used=0.0, pinned=True),
        resident("busy", priority=-5, last_used=0.0, busy=True),
        resident("p1-old", priority=1, last_used=1.0),
        resident("p0-new", priority=0, last_used=9.0),
        resident("p0-old", priority=0, last_used=2.0),
        resident("neg", priority=-1, last_used=50.0),
    ]
    order = [r.name for r in eviction_order(residents)]
    assert order == ["neg", "p0-old", "p0-new", "p1-old", "busy"]


def test_stops_evicting_as_soon_as_it_fits() -> None:
    residents = [
        resident("a", 300, last_used=1.0),
        resident("b", 100, last_used=2.0),
        resident("c", 100, last_used=3.0),
    ]
    result = plan({HOST: 300}, {HOST: 600}, residents)
    assert result.evict == ["a"]  # a alone frees enough; b and c stay
    assert result.free_after == {HOST: 400}


# --- pinned -----------------------------------------------------------------------------------------


def test_pinned_never_evicted_even_with_lowest_priority() -> None:
    residents = [
        resident("pinned", priority=-5, last_used=0.0, pinned=True),
        resident("other", priority=5, last_used=100.0),
    ]
    result = plan({HOST: 100}, {HOST: 200}, residents)
    assert result.fits
    assert result.evict == ["other"]


def test_pinned_residents_make_it_never_fit() -> None:
    residents = [resident("p1", 200, pinned=True), resident("p2", 200, pinned=True), resident("x", 50)]
    result = plan({HOST: 200}, {HOST: 500}, residents)
    assert not result.fits
    assert result.evict == []
    assert result.best_possible == {HOST: 100}  # 500 - the two pinned; x counted as gone


# --- cannot fit at all ------------------------------------------------------------------------------


def test_never_fits_reports_best_possible_and_evicts_nothing() -> None:
    residents = [resident("a", 200), resident("b", 150, busy=True)]
    result = plan({HOST: 900}, {HOST: 500}, residents)
    assert not result.fits
    assert result.evict == []
    assert result.best_possible == {HOST: 500}
    assert result.free_after == {HOST: 150}


def test_unknown_device_counts_as_zero_capacity() -> None:
    result = plan({"gpu3": 10}, {HOST: 500, "gpu0": 1000}, [resident("a", 100)])
    assert not result.fits
    assert result.best_possible["gpu3"] == 0


# --- max_loaded -------------------------------------------------------------------------------------


def test_max_loaded_forces_an_eviction_even_when_memory_fits() -> None:
    residents = [resident("new", 10, last_used=5.0), resident("old", 10, last_used=1.0)]
    assert plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=3).evict == []
    result = plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=2)
    assert result.fits
    assert result.evict == ["old"]
    assert plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=1).evict == ["old", "new"]


def test_max_loaded_eviction_follows_the_policy_and_skips_pinned() -> None:
    residents = [
        resident("pinned", 10, last_used=0.0, pinned=True),
        resident("high", 10, priority=3, last_used=0.5),
        resident("low", 10, priority=0, last_used=9.0),
    ]
    assert plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=3).evict == ["low"]
    assert plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=2).evict == ["low", "high"]


def test_max_loaded_with_only_pinned_residents_never_fits() -> None:
    residents = [resident("p", 10, pinned=True)]
    assert not plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=1).fits
    assert plan({HOST: 10}, {HOST: 10_000}, residents, max_loaded=2).fits


# --- several devices --------------------------------------------------------------------------------


def test_multi_device_only_evicts_residents_on_the_short_device() -> None:
    capacity = {HOST: 1000, "gpu0": 1000, "gpu1": 1000}
    residents = [
        # oldest and cheapest, but it lives on gpu0 where the new model has room: evicting it does not help
        resident("on-gpu0", charges={"gpu0": 600}, last_used=1.0),
        resident("on-gpu1", charges={"gpu1": 700}, last_used=2.0),
        resident("on-host", charges={HOST: 300}, last_used=3.0),
    ]
    need = {HOST: 100, "gpu0": 300, "gpu1": 500}
    result = plan(need, capacity, residents)
    assert result.fits
    assert result.evict == ["on-gpu1"]
    assert result.free_after == {HOST: 700, "gpu0": 400, "gpu1": 1000}


def test_multi_device_evicts_for_every_short_device() -> None:
    capacity = {HOST: 1000, "gpu0": 1000, "gpu1": 1000}
    residents = [
        resident("gpu0-a", charges={"gpu0": 800}, last_used=1.0),
        resident("host-only", charges={HOST: 100}, last_used=2.0),
        resident("split", charges={"gpu0": 100, "gpu1": 800}, last_used=3.0),
    ]
    need = {"gpu0": 300, "gpu1": 400}
    result = plan(need, capacity, residents)
    assert result.fits
    # gpu0-a frees gpu0 (short: 100 free); host-only helps nowhere and is skipped; split frees gpu1
    assert result.evict == ["gpu0-a", "split"]


def test_resident_that_does_not_help_is_skipped_but_later_ones_are_taken() -> None:
    residents = [
        resident("elsewhere", charges={"gpu1": 500}, priority=-1, last_used=0.0),
        resident("here", charges={"gpu0": 500}, priority=0, last_used=1.0),
    ]
    result = plan({"gpu0": 600}, {"gpu0": 1000, "gpu1": 1000}, residents)
    assert result.fits
    assert result.evict == ["here"]


def test_max_loaded_evicts_even_a_resident_that_frees_no_short_device() -> None:
    residents = [
        resident("elsewhere", charges={"gpu1": 500}, last_used=0.0),
        resident("here", charges={"gpu0": 100}, last_used=1.0),
    ]
    result = plan({"gpu0": 100}, {"gpu0": 1000, "gpu1": 1000}, residents, max_loaded=2)
    assert result.evict == ["elsewhere"]  # the count is what is short, so the first in order goes


def test_multi_device_never_fits_names_the_short_device() -> None:
    capacity = {HOST: 1000, "gpu0": 1000, "gpu1": 500}
    residents = [resident("x", charges={"gpu0": 200, "gpu1": 200})]
    result = plan({"gpu0": 400, "gpu1": 800}, capacity, residents)
    assert not result.fits
    assert result.best_possible == {HOST: 1000, "gpu0": 1000, "gpu1": 500}

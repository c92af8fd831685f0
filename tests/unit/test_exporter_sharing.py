"""Dedup of identical probes, min_interval, limits and deadlines, with a fake probe (no network)."""

from __future__ import annotations

import asyncio

from echoprobe.monitoring.exporter.config import Limits
from echoprobe.monitoring.exporter.sharing import ProbeSharer, Shared
from echoprobe.results import Outcome, ProbeResult


def record(outcome: Outcome = Outcome.SUCCESS, why: str | None = None) -> ProbeResult:
    return ProbeResult(
        target="t", host="h", port=104, called_ae="A", calling_ae="B", outcome=outcome, error=why
    )


class FakeProbe:
    """Counts probes and how many run at once; each takes `seconds`."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.calls = 0
        self.running = 0
        self.peak = 0
        self.budgets: list[float] = []

    async def __call__(self, budget: float) -> ProbeResult:
        self.calls += 1
        self.budgets.append(budget)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        return record()


def expired(why: str) -> ProbeResult:
    return record(Outcome.DEADLINE_EXCEEDED, why)


async def ask(
    sharer: ProbeSharer,
    fake: FakeProbe,
    key: object = "k",
    host: str = "h",
    *,
    min_interval: float = 0.0,
    budget: float = 5.0,
) -> Shared:
    deadline = asyncio.get_running_loop().time() + budget
    return await sharer.get(
        key, host, min_interval=min_interval, deadline=deadline, run=fake, expired=expired
    )


def test_identical_probes_in_flight_share_one() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits()), FakeProbe(0.2)
        answers = await asyncio.gather(*(ask(sharer, fake) for _ in range(5)))
        assert fake.calls == 1
        assert sorted(str(a.how) for a in answers) == ["None"] + ["inflight"] * 4
        assert all(a.result.ok for a in answers)
        assert sharer.in_flight == 0

    asyncio.run(scenario())


def test_min_interval_serves_a_young_result() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits()), FakeProbe(0.01)
        first = await ask(sharer, fake, min_interval=1.0)
        second = await ask(sharer, fake, min_interval=1.0)
        assert (first.how, second.how, fake.calls) == (None, "cached", 1)
        await asyncio.sleep(1.05)
        third = await ask(sharer, fake, min_interval=1.0)
        assert (third.how, fake.calls) == (None, 2)
        assert (await ask(sharer, fake)).how is None  # min_interval 0: never cached
        sharer.reconfigure(Limits())  # a reload forgets every result
        assert (await ask(sharer, fake, min_interval=1.0)).how is None

    asyncio.run(scenario())


def test_per_host_limit() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits(per_host=2)), FakeProbe(0.05)
        answers = await asyncio.gather(*(ask(sharer, fake, key=i) for i in range(6)))
        assert all(a.result.ok for a in answers)
        assert (fake.calls, fake.peak) == (6, 2)
        fake2 = FakeProbe(0.05)
        await asyncio.gather(*(ask(sharer, fake2, key=i, host=f"h{i}") for i in range(6)))
        assert fake2.peak == 6  # other hosts do not wait for each other

    asyncio.run(scenario())


def test_global_limit() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits(max_concurrent_probes=3, per_host=10)), FakeProbe(0.05)
        await asyncio.gather(*(ask(sharer, fake, key=i, host=f"h{i}") for i in range(9)))
        assert (fake.calls, fake.peak) == (9, 3)

    asyncio.run(scenario())


def test_waiting_for_a_slot_counts_against_the_budget() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits(per_host=1)), FakeProbe(1.0)
        slow, starved = await asyncio.gather(
            ask(sharer, fake, key=1, budget=3.0), ask(sharer, fake, key=2, budget=0.3)
        )
        assert slow.result.ok
        assert starved.result.outcome is Outcome.DEADLINE_EXCEEDED
        assert "per_host" in (starved.result.error or "")
        assert fake.calls == 1

    asyncio.run(scenario())


def test_answer_never_later_than_the_deadline() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits()), FakeProbe(3.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        late = await ask(sharer, fake, budget=0.1)
        assert late.result.outcome is Outcome.DEADLINE_EXCEEDED
        assert loop.time() - start < 2.0  # at the budget, long before the probe ends
        # The probe itself goes on (another scrape may be waiting for it) and ends by itself.
        patient = await ask(sharer, fake, budget=5.0)
        assert (patient.how, patient.result.ok, fake.calls) == ("inflight", True, 1)
        assert fake.budgets[0] <= 0.1

    asyncio.run(scenario())


def test_a_failing_probe_becomes_a_record() -> None:
    async def broken(_budget: float) -> ProbeResult:
        raise RuntimeError("bug")

    async def scenario() -> None:
        sharer = ProbeSharer(Limits())
        deadline = asyncio.get_running_loop().time() + 1.0
        answer = await sharer.get(
            "k", "h", min_interval=0, deadline=deadline, run=broken, expired=expired
        )
        assert answer.result.outcome is Outcome.INTERNAL_ERROR
        assert "RuntimeError: bug" in (answer.result.error or "")

    asyncio.run(scenario())


def test_close_cancels_probes_in_flight() -> None:
    async def scenario() -> None:
        sharer, fake = ProbeSharer(Limits()), FakeProbe(30.0)
        waiter = asyncio.create_task(ask(sharer, fake, budget=20.0))
        await asyncio.sleep(0.05)
        await sharer.close()
        answer = await asyncio.wait_for(waiter, 2.0)
        assert answer.result.outcome is Outcome.DEADLINE_EXCEEDED
        assert "stopping" in (answer.result.error or "")

    asyncio.run(scenario())

"""The agent's pure rules for restarts and for the memory of finished sessions."""

from __future__ import annotations

from pi_mqtt_relay.sessions import (
    FINISHED_KEPT,
    Finish,
    Now,
    Resume,
    StoredSession,
    prune_finished,
    resume,
)

NOW = Now(mono=100.0, wall=1_800_000_000.0)


def _stored(boot_id: str) -> StoredSession:
    return StoredSession(
        session="s-1",
        until=NOW.wall + 600,
        deadline_mono=NOW.mono + 600,
        deadline_wall=NOW.wall + 600,
        remaining=300.0,
        boot_id=boot_id,
    )


def test_same_boot_resumes_by_the_monotonic_clock() -> None:
    outcome, active = resume(_stored("b1"), NOW, "b1", 14_400, wall_clock_synced=False)
    assert outcome is Resume.RESUME
    assert active is not None
    # Never more than the time left when last stored.
    assert active.remaining(NOW) == 300.0


def test_reboot_waits_for_a_synced_clock() -> None:
    assert resume(_stored("b0"), NOW, "b1", 14_400, wall_clock_synced=False) == (
        Resume.HOLD,
        None,
    )
    outcome, active = resume(_stored("b0"), NOW, "b1", 14_400, wall_clock_synced=True)
    assert outcome is Resume.RESUME
    assert active is not None


def test_finished_ids_are_bounded() -> None:
    finished = {f"s-{i}": (Finish.CANCELLED, NOW.wall - i) for i in range(FINISHED_KEPT + 50)}
    kept = prune_finished(finished, NOW.wall)
    assert len(kept) == FINISHED_KEPT
    # The newest are the ones kept.
    assert "s-0" in kept
    assert f"s-{FINISHED_KEPT + 49}" not in kept

import random

from shopbridge.runtime.backoff import RetryPolicy


def test_delay_grows_exponentially_within_equal_jitter_bounds() -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=3600.0, rng=random.Random(7))
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (10, 1024.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 1  # jittered, not one fixed value


def test_delay_is_capped() -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=60.0)
    assert all(policy.delay(30) <= 60.0 for _ in range(100))


def test_server_retry_after_is_a_floor_with_at_most_ten_percent_added() -> None:
    policy = RetryPolicy(base_seconds=2.0, rng=random.Random(1))
    delays = [policy.delay(1, retry_after=30.0) for _ in range(200)]
    assert min(delays) >= 30.0
    assert max(delays) <= 33.0

"""The worker's scheduled jobs (APScheduler 3.x, in its own process — never inside API workers)."""

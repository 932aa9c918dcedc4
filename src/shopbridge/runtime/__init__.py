"""The durable work engine: inbox, jobs (transactional outbox), workers, retries, dead letters, scheduler,
rate limits. The database is the truth for work; nothing here keeps work only in memory."""

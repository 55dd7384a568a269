-- Finds uploads that began but were never recorded as stored (the gateway instance streaming them
-- ended first), oldest first, without scanning every job: see the gateway's upload sweep.
CREATE INDEX jobs_pending ON jobs (stored_at, created_at);

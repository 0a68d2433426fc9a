SELECT job_type, queue, status, count, oldest_created_at
FROM job_queue_stats
ORDER BY job_type, queue, status

-- The reference instant is the newest play in the data, not now(): the features of a given
-- set of inputs never change, and training and scoring can be reproduced.
WITH reference AS (
    SELECT max(played_at) AS as_of, max(played_at) - INTERVAL 30 DAY AS window_start
    FROM plays
),
play_stats AS (
    SELECT
        p.listener_id,
        count(*) FILTER (WHERE p.played_at > r.window_start) AS plays_last_30d,
        coalesce(sum(p.ms_played) FILTER (WHERE p.played_at > r.window_start), 0)
            AS ms_played_last_30d,
        max(p.played_at) AS last_played_at,
        avg(CAST(p.ms_played < 30000 AS DOUBLE)) AS skip_rate
    FROM plays AS p, reference AS r
    GROUP BY p.listener_id
),
session_stats AS (
    SELECT s.listener_id, count(*) AS sessions_last_30d
    FROM sessions AS s, reference AS r
    WHERE s.started_at > r.window_start
    GROUP BY s.listener_id
)
SELECT
    a.listener_id,
    a.plan,
    a.country,
    greatest(date_diff('day', a.signed_up_at, least(coalesce(a.cancelled_at, r.as_of), r.as_of)), 0)
        AS tenure_days,
    coalesce(ps.plays_last_30d, 0) AS plays_last_30d,
    CAST(coalesce(ps.ms_played_last_30d, 0) AS BIGINT) AS ms_played_last_30d,
    coalesce(ss.sessions_last_30d, 0) AS sessions_last_30d,
    date_diff('day', ps.last_played_at, r.as_of) AS days_since_last_play,
    ps.skip_rate,
    a.cancelled_at IS NOT NULL AS churned,
    CAST(timezone('UTC', r.as_of) AS DATE) AS as_of_date
FROM accounts AS a
CROSS JOIN reference AS r
LEFT JOIN play_stats AS ps ON ps.listener_id = a.listener_id
LEFT JOIN session_stats AS ss ON ss.listener_id = a.listener_id
ORDER BY a.listener_id

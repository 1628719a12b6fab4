-- Sessionise plays: a play opens a new session when it starts more than 30 minutes after
-- the latest end of the listener's earlier plays. A running count of session openings
-- numbers the sessions per listener.
WITH ordered AS (
    SELECT
        listener_id,
        track_id,
        played_at,
        ms_played,
        device,
        play_id,
        played_at + to_milliseconds(ms_played) AS ended_at
    FROM plays
),
flagged AS (
    SELECT
        *,
        CASE
            WHEN played_at - max(ended_at) OVER listener_before <= INTERVAL 30 MINUTE THEN 0
            ELSE 1
        END AS opens_session
    FROM ordered
    WINDOW listener_before AS (
        PARTITION BY listener_id ORDER BY played_at, play_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    )
),
numbered AS (
    SELECT
        *,
        sum(opens_session) OVER (
            PARTITION BY listener_id ORDER BY played_at, play_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS session_number
    FROM flagged
)
SELECT
    listener_id || '-s' || lpad(CAST(session_number AS VARCHAR), 5, '0') AS session_id,
    listener_id,
    min(played_at) AS started_at,
    max(ended_at) AS ended_at,
    count(*) AS plays,
    CAST(sum(ms_played) AS BIGINT) AS ms_played,
    count(DISTINCT track_id) AS distinct_tracks,
    any_value(device) FILTER (WHERE opens_session = 1) AS device
FROM numbered
GROUP BY listener_id, session_number
ORDER BY listener_id, started_at

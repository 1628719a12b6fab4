-- The player stores played_at as UTC text 'YYYY-MM-DD HH:MM:SS.mmm'; the '+00' makes the UTC
-- explicit, so the result never depends on the session's time zone.
SELECT
    play_id,
    listener_id,
    track_id,
    CAST(played_at || '+00' AS TIMESTAMPTZ) AS played_at,
    CAST(ms_played AS BIGINT) AS ms_played,
    device,
    country
FROM plays

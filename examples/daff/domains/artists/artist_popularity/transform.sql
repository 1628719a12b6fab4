-- Attribute every play to its track's artist and aggregate per UTC day.
SELECT
    CAST(timezone('UTC', p.played_at) AS DATE) AS day,
    a.artist_id,
    a.artist_name,
    a.genre,
    count(*) AS plays,
    count(DISTINCT p.listener_id) AS listeners,
    CAST(sum(p.ms_played) AS BIGINT) AS ms_played,
    avg(CAST(p.ms_played < 30000 AS DOUBLE)) AS skip_rate
FROM plays AS p
JOIN tracks AS t USING (track_id)
JOIN artists AS a ON a.artist_id = t.artist_id
GROUP BY ALL
ORDER BY day, a.artist_id

-- Streams are plays of at least 30 seconds; the rate is a flat 0.4 US cents per stream.
-- DECIMAL arithmetic keeps the rounding exact (half away from zero).
WITH monthly AS (
    SELECT
        CAST(date_trunc('month', timezone('UTC', p.played_at)) AS DATE) AS month,
        t.artist_id,
        count(*) FILTER (WHERE p.ms_played >= 30000) AS streams
    FROM plays AS p
    JOIN tracks AS t USING (track_id)
    GROUP BY ALL
)
SELECT
    m.month,
    m.artist_id,
    a.artist_name,
    m.streams,
    CAST(0.4 AS DECIMAL(6, 3)) AS rate_cents_per_stream,
    CAST(round(m.streams * CAST(0.4 AS DECIMAL(6, 3))) AS BIGINT) AS royalty_cents,
    'USD' AS currency
FROM monthly AS m
JOIN artists AS a USING (artist_id)
ORDER BY m.month, m.artist_id

"""Fill the catalog's two ports, artists and tracks, from the catalog service's exports.

A SQL transform fills one port; a product with two ports needs a Python transform. Each port
is a DuckDB relation over the declared inputs, with explicit casts so the result does not
depend on how the CSV and JSON readers guessed the column types.
"""

ARTISTS = """
SELECT
    CAST(artist_id AS VARCHAR) AS artist_id,
    CAST(name AS VARCHAR) AS artist_name,
    CAST(country AS VARCHAR) AS country,
    CAST(genre AS VARCHAR) AS genre,
    CAST(signed_on AS DATE) AS signed_on
FROM raw_artists
ORDER BY artist_id
"""

TRACKS = """
SELECT
    CAST(track_id AS VARCHAR) AS track_id,
    CAST(artist_id AS VARCHAR) AS artist_id,
    CAST(title AS VARCHAR) AS title,
    CAST(duration_ms AS BIGINT) AS duration_ms,
    CAST(released_on AS DATE) AS released_on,
    CAST(explicit AS BOOLEAN) AS explicit
FROM raw_tracks
ORDER BY track_id
"""


def transform(inputs):
    return {"artists": inputs.sql(ARTISTS), "tracks": inputs.sql(TRACKS)}

-- Timestamps are stored as UTC text 'YYYY-MM-DD HH:MM:SS'; '+00' makes the UTC explicit.
-- LEFT JOIN keeps an account whose plan has no price, so the not_null check reports it.
SELECT
    a.listener_id,
    a.email,
    CAST(a.birth_date AS DATE) AS birth_date,
    a.country,
    a.plan,
    CAST(p.monthly_price_cents AS BIGINT) AS monthly_price_cents,
    p.currency,
    CAST(a.signed_up_at || '+00' AS TIMESTAMPTZ) AS signed_up_at,
    CAST(a.cancelled_at || '+00' AS TIMESTAMPTZ) AS cancelled_at,
    a.marketing_consent = 1 AS marketing_consent
FROM accounts AS a
LEFT JOIN plan_prices AS p USING (plan)
ORDER BY a.listener_id

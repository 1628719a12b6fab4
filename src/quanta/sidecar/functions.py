"""Which functions a query may call.

Functions sqlglot knows by type (``COUNT``, ``DATE_TRUNC``, ``REGEXP_REPLACE`` ...) are pure
computations and allowed, except those that read files, URLs, secrets or the session. Others
reach the engine by name and must be on the allow-list below; anything else is refused, so a
new engine function that reads files cannot slip through.
"""

from __future__ import annotations

from sqlglot import exp

REFUSED_TYPED = {
    "ReadCSV", "ReadParquet", "ToFile", "Secret", "JSONTable", "XMLTable", "GenerateTable",
    "SplitToTable", "StrtokSplitToTable",
}
ALLOWED_CURRENT = {"CurrentDate", "CurrentTime", "CurrentTimestamp", "CurrentDatetime",
                   "CurrentTimezone", "CurrentTimestampLTZ"}

ALLOWED_NAMES = frozenset("""
abs acos acosh add age any_value approx_count_distinct approx_quantile arbitrary arg_max
arg_min argmax argmin array_aggr array_append array_concat array_contains array_distinct
array_extract array_filter array_has array_length array_position array_slice array_sort
array_transform ascii asin atan atan2 avg bar base64 bin bit_and bit_count bit_length bit_or
bit_xor bool_and bool_or cardinality cbrt ceil ceiling chr concat_ws contains corr cos cot
count count_if covar_pop covar_samp date_add date_diff date_part date_sub date_trunc datediff
datepart datesub datetrunc day dayname dayofmonth dayofweek dayofyear decade degrees divide
editdist3 ends_with entropy epoch epoch_ms epoch_ns epoch_us equi_width_bins even exp factorial
favg first flatten floor format format_bytes formatreadablesize fsum gamma gcd generate_series
get_bit get_current_time greatest greatest_common_divisor hamming hash histogram hour ilike
ilike_escape instr isfinite isinf isnan isodow isoyear jaccard jaro_similarity
jaro_winkler_similarity json_array_length json_extract json_extract_string json_keys
json_type json_valid json_value kurtosis kurtosis_pop last last_day lcase lcm least
least_common_multiple left len length levenshtein lgamma like_escape list list_aggr
list_any_value list_append list_concat list_contains list_distinct list_extract list_filter
list_has list_has_all list_has_any list_position list_reduce list_reverse list_slice
list_sort list_transform list_unique list_value ln log log10 log2 lower lpad ltrim make_date
make_time make_timestamp map map_extract map_keys map_values max max_by md5 md5_number
median microsecond millennium millisecond min min_by minute mismatches mod mode month
monthname multiply nanosecond nextafter nfc_normalize not_ilike_escape not_like_escape now
ntile nullif octet_length ord parse_dirname parse_filename parse_path pi position pow power
printf product quantile quantile_cont quantile_disc quarter radians random range reduce
regexp_escape regexp_extract regexp_extract_all regexp_full_match regexp_matches
regexp_replace regexp_split_to_array repeat replace reservoir_quantile reverse right round
round_even row rpad rtrim second sem setseed sha1 sha256 sign signbit sin sinh skewness sqrt
starts_with stddev stddev_pop stddev_samp str_split str_split_regex strftime string_agg
string_split string_split_regex string_to_array strip_accents strlen strpos strptime
struct_extract struct_insert struct_pack substr substring subtract sum sum_no_overflow
sumkahan tan tanh time_bucket timezone timezone_hour timezone_minute to_base64 to_binary
to_centuries to_days to_decades to_hours to_microseconds to_millennia to_milliseconds
to_minutes to_months to_seconds to_timestamp to_weeks to_years today transaction_timestamp
translate trim trunc try_strptime typeof ucase unbin unhex unicode union_extract union_tag
union_value unnest upper uuid var_pop var_samp variance week weekday weekofyear xor year
yearweek
""".split())  # noqa: SIM905  (a word list reads better than 300 quoted strings)


def refused_function(node: exp.Func) -> str | None:
    """The name of ``node``'s function when a query may not call it, else None."""
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        return None if name in ALLOWED_NAMES else name
    kind = type(node).__name__
    if kind in REFUSED_TYPED or (kind.startswith(("Current", "Session"))
                                 and kind not in ALLOWED_CURRENT):
        return node.sql_name().lower()
    return None

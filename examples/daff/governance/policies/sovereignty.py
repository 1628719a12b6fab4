"""Localization and sovereignty: staff employed in a region read only that region's rows.

Daff's staff carry a group per region (region-eu, region-americas, region-apac). Wherever a
port has a ``country`` column, their reads are narrowed to the countries of their regions;
staff without a region group are not narrowed by this policy.
"""

from quanta.governance import Decision, PolicyRequest, policy

REGIONS = {
    "eu": ("DE", "ES", "FR", "GB", "IT", "SE"),
    "americas": ("BR", "CA", "MX", "US"),
    "apac": ("AU", "IN", "JP", "KR"),
}


@policy("sovereignty")
def sovereignty(request: PolicyRequest) -> Decision | None:
    mine = sorted(g.removeprefix("region-") for g in request.groups if g.startswith("region-"))
    if not mine or not request.has_column("country"):
        return None
    unknown = [r for r in mine if r not in REGIONS]
    if unknown:  # fail closed: a region nobody defined reads nothing
        return Decision.deny(f"no countries are defined for region '{unknown[0]}'")
    countries = ", ".join(f"'{c}'" for r in mine for c in REGIONS[r])
    return Decision.narrow(f"staff of {', '.join(mine)} read their region's rows only",
                           row_filters=[f"country IN ({countries})"])

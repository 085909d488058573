"""placeholder"""
HANDLERS = []


async def coverage_rows(pg, principal):
    return []


def by_region(rows):
    return []

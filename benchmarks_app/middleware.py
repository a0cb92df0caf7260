"""``X-Query-Count`` on every answer, for the benchmark's queries-per-request column.

Installed only when BENCH_QUERY_COUNT is on (registry_site.settings puts it first in
MIDDLEWARE then); otherwise it is not in the stack at all, so it costs nothing.
"""

from django.db import connections


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        counted = [0]

        def count(execute, sql, params, many, context):
            counted[0] += 1
            return execute(sql, params, many, context)

        wrappers = [connection.execute_wrapper(count) for connection in connections.all()]
        for wrapper in wrappers:
            wrapper.__enter__()
        try:
            response = self.get_response(request)
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
        response["X-Query-Count"] = str(counted[0])
        return response

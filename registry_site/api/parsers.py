"""The API's JSON parser: it fails closed on JSON that the rest of the stack cannot handle.

Two kinds of valid JSON used to answer 500: arrays nested deeper than Python's recursion limit
(``json`` raises RecursionError) and ``"\\ud800"``, a lone UTF-16 surrogate that decodes to a
Python string no database, hash or response can encode. Both are refused here, once, for every
field of every endpoint, with 400 ``parse_error``.
"""

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Far deeper than any request this API accepts (proposal payloads nest two levels).
MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
SURROGATE = re.compile("[\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        refuse_unencodable(data)
        return data


def refuse_unencodable(data) -> None:
    """Walk the parsed document without recursion: at most MAX_JSON_DEPTH nested arrays and
    objects, no lone surrogates in any key or string."""
    pending = [(data, 0, "")]
    while pending:
        value, depth, where = pending.pop()
        if depth >= MAX_JSON_DEPTH and isinstance(value, (dict, list)):
            raise ParseError(TOO_DEEP)
        if isinstance(value, str):
            if SURROGATE.search(value):
                # The path may hold the bad key itself: the message must stay encodable.
                where = SURROGATE.sub("\N{REPLACEMENT CHARACTER}", where) or "the top level"
                raise ParseError(
                    f"JSON parse error - the string at {where} holds a lone UTF-16 surrogate "
                    "(\\ud800-\\udfff), which is not a character."
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                pending.append((key, depth + 1, path))
                pending.append((item, depth + 1, path))
        elif isinstance(value, list):
            pending.extend((item, depth + 1, f"{where}[{index}]")
                           for index, item in enumerate(value))

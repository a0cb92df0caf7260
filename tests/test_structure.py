"""The project's shape: namespaced URL names that resolve, and dependency arrows that point one way.

Both are read from the code itself (the URL resolver, and every module parsed with ``ast``),
so a new URL module without ``app_name``, a bare ``{% url 'name' %}`` or an import that points
up the chain fails here, not in production.
"""

import ast
import re
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[1]

# Lowest first: a module may import its own app and the apps before it, never one after it.
LAYERS = ["registry_site", "fees_app", "models_app", "governance_app", "accounts_app",
          "benchmarks_app"]
# The root URLconf and the settings are where the apps are put together: they may name any app.
MAY_NAME_ANY_APP = {"registry_site/urls.py", "registry_site/settings.py"}
# Functions whose first argument (or ``viewname`` keyword) is a URL name.
REVERSING_CALLS = {"reverse", "reverse_lazy", "redirect", "resolve_url"}
TEMPLATE_URL_TAG = re.compile(r"""{%\s*url\s+(['"])([^'"]+)\1""")


def walk_patterns(resolver, namespace=(), route=""):
    """Yield (namespace, pattern, full route) for every URLPattern below ``resolver``."""
    for entry in resolver.url_patterns:
        full = route + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = (*namespace, entry.namespace) if entry.namespace else namespace
            yield from walk_patterns(entry, inner, full)
        else:
            assert isinstance(entry, URLPattern)
            yield ":".join(namespace), entry, full


def known_url_names() -> set[str]:
    return {f"{ns}:{p.name}" if ns else p.name for ns, p, _ in walk_patterns(get_resolver())
            if p.name}


def is_format_suffix_twin(pattern: URLPattern) -> bool:
    # DRF's DefaultRouter adds "<route>.<format>" under the same name on purpose: reverse()
    # picks it only when given format=, so it is not a second definition of the name.
    return "format" in pattern.pattern.regex.groupindex


def test_no_url_name_is_defined_twice_in_a_namespace():
    routes = defaultdict(list)
    for namespace, pattern, route in walk_patterns(get_resolver()):
        if pattern.name and not is_format_suffix_twin(pattern):
            routes[f"{namespace}:{pattern.name}"].append(route)
    assert {name: found for name, found in routes.items() if len(found) > 1} == {}


def test_every_url_name_is_namespaced():
    bare = [f"{route} ({p.name})" for ns, p, route in walk_patterns(get_resolver())
            if p.name and not ns]
    assert bare == []
    # Every module the root includes sets app_name (admin's own includes sit inside "admin").
    included = [e for e in get_resolver().url_patterns if isinstance(e, URLResolver)]
    assert len(included) > 5
    assert [str(e.pattern) for e in included if not e.app_name] == []


def python_files(*folders: str):
    for folder in folders:
        yield from (p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def url_names_used_in_python(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        # as_view(url_name=...) is drf-spectacular's name of the schema view; an @action's
        # url_name is only a suffix that the router prefixes with its basename.
        args = [kw.value for kw in node.keywords
                if kw.arg == "viewname" or (kw.arg == "url_name" and name == "as_view")]
        if name in REVERSING_CALLS and node.args:
            args.append(node.args[0])
        for arg in args:
            # redirect() also takes a path or an absolute URL; those are not names.
            if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                    and not arg.value.startswith(("/", "http:", "https:"))):
                yield node.lineno, arg.value


def test_every_url_name_used_resolves_to_a_namespaced_name():
    known = known_url_names()
    unknown = []
    for path in python_files(*LAYERS, "tests"):
        for line, name in url_names_used_in_python(ast.parse(path.read_text())):
            if name not in known:
                unknown.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    templates = [p for p in ROOT.rglob("*.html") if ".venv" not in p.parts]
    assert templates
    for path in templates:
        for match in TEMPLATE_URL_TAG.finditer(path.read_text()):
            if match.group(2) not in known:
                unknown.append(f"{path.relative_to(ROOT)}: {match.group(2)}")
    for setting in ["LOGIN_URL", "LOGIN_REDIRECT_URL", "LOGOUT_REDIRECT_URL"]:
        value = getattr(settings, setting)
        if not value.startswith("/") and value not in known:
            unknown.append(f"settings.{setting}: {value}")
    assert unknown == []


def referenced_apps(tree: ast.AST):
    """(line, app) for every import of an app and every dotted string naming one.

    Strings count too: include("fees_app.urls"), a lazy "fees_app.LedgerEntry" foreign key
    and apps.get_model("fees_app", ...) depend on that app as much as an import does.
    """
    dotted = re.compile(rf"^({'|'.join(LAYERS)})(\.\w+)+$")
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if dotted.match(node.value):
                modules = [node.value]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get_model"
              and node.args and isinstance(node.args[0], ast.Constant)):
            modules = [str(node.args[0].value)]
        for module in modules:
            app = module.split(".")[0]
            if app in LAYERS:
                yield node.lineno, app


def test_dependencies_point_one_way():
    upward = []
    for rank, app in enumerate(LAYERS):
        for path in python_files(app):
            relative = path.relative_to(ROOT).as_posix()
            if relative in MAY_NAME_ANY_APP:
                continue
            for line, other in referenced_apps(ast.parse(path.read_text())):
                if LAYERS.index(other) > rank:
                    upward.append(f"{relative}:{line}: {app} -> {other}")
    assert upward == []


def test_the_import_check_sees_imports_strings_and_get_model():
    """The check above would pass vacuously if the parser missed a kind of reference."""
    source = (
        "import governance_app.models\n"
        "def f():\n"
        "    from models_app.services import registration_create\n"
        "x = include('accounts_app.urls')\n"
        "y = apps.get_model('fees_app', 'LedgerEntry')\n"
        "z = 'fees_app is mentioned in prose'\n"
        "from . import sibling\n"
    )
    assert sorted(referenced_apps(ast.parse(source))) == [
        (1, "governance_app"), (3, "models_app"), (4, "accounts_app"), (5, "fees_app"),
    ]

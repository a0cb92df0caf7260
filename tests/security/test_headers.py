"""Security headers, the Content-Security-Policy on every page, the API docs under it, and
`manage.py check --deploy` with production settings."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
ROOT = Path(__file__).resolve().parents[2]


def csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def plain_routes(patterns=None, prefix="") -> list[str]:
    """Every route without path parameters, as a URL."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = str(entry.pattern)
        if "<" in route or "(?P" in route or "^" in route or "$" in route:
            continue
        if isinstance(entry, URLResolver):
            found += plain_routes(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            found.append("/" + prefix + route)
    return sorted(set(found))


def test_security_headers_on_a_page():
    response = Client().get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = csp(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_the_policy_built_once_is_the_one_django_csp_builds(settings):
    """registry_site.middleware.CSPMiddleware keeps one policy text for plain responses;
    it must be django-csp's text for the settings, also after the settings change."""
    from csp.utils import build_policy

    assert Client().get("/accounts/login/")["Content-Security-Policy"] == build_policy()
    api = Client().get("/api/v1/models/")
    assert api["Content-Security-Policy"] == build_policy()
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert Client().get("/accounts/login/")["Content-Security-Policy"] == "default-src 'none'"


def test_every_page_passes_the_csp_without_inline_script_or_style(make_user):
    """Pages are fetched as a moderator, who sees the most; each HTML page must carry the
    strict policy and contain no inline script, style attribute or event handler."""
    moderator = make_user("pagemod", moderator=True, is_superuser=True)
    browser = Client()
    browser.force_login(moderator)
    checked = []
    for url in plain_routes():
        if url.startswith("/api/") or url.startswith("/admin/logout"):
            continue
        response = browser.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        checked.append(url)
        assert not INLINE_SCRIPT.search(html), f"inline <script> on {url}"
        assert not STYLE_ATTRIBUTE.search(html), f"style attribute on {url}"
        assert not EVENT_HANDLER.search(html), f"inline event handler on {url}"
        assert csp(response)["script-src"] == ["'self'"], url
    assert "/accounts/login/" in checked
    assert "/admin/" in checked


def test_api_docs_work_under_the_csp():
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not INLINE_SCRIPT.search(html)
    policy = csp(page)
    # Scripts stay strict; only this page may use inline styles (Swagger UI applies them).
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-eval'" not in page["Content-Security-Policy"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), f"missing static file {src}"
        else:
            assert src.startswith("/api/docs/"), f"docs load {src} from elsewhere"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
    assert b"validatorUrl" in script.content
    assert client.get("/api/schema/").status_code == 200


def production_env(**extra) -> dict:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "THROTTLE_", "IP_ALLOWLIST", "TRUSTED_PROXY"))
    }
    env.update({
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "registry.example.com",
        # Production refuses to start without Redis; nothing here connects to it.
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        **extra,
    })
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_turn_on_hsts_and_secure_cookies():
    code = (
        "from django.conf import settings as s;"
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER[0])"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # The last line: Django 5.2's shell may first report its automatic imports.
    values = result.stdout.strip().splitlines()[-1].split()
    assert values == ["31536000", "True", "True", "True", "True", "HTTP_X_FORWARDED_PROTO"]


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr

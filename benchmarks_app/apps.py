from django.apps import AppConfig


class BenchmarksAppConfig(AppConfig):
    """``make bench``: seeding, the load run and its report. No models, no URLs."""

    name = "benchmarks_app"
    verbose_name = "Benchmarks"

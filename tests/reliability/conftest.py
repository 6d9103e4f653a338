def pytest_configure(config):
    # Registered here too, so that `--strict-markers` accepts the suite wherever it is run from.
    config.addinivalue_line("markers", "chaos: the chaos suite; real processes on PostgreSQL and a Celery broker")

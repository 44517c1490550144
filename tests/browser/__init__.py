"""Browser tests of the provider in the Airflow UI (see conftest.py)."""

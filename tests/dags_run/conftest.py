"""Runs of DAG files in a real Airflow with ``dag.test()``, on a migrated SQLite database (``airflow_db``)."""

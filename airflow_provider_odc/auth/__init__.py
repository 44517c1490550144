"""Plain OAuth 2.0 / OIDC for ODC: discovery and the client-credentials exchange. No Airflow imports."""

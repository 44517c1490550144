"""Apache Airflow provider for OutSystems Developer Cloud (ODC).

Nothing is imported here on purpose: Airflow imports provider packages while it parses DAGs, and the
package root must stay cheap. Import hooks and operators from their modules.
"""

__version__ = "0.1.0"

"""Leak scan: the example DAGs, as shipped, on the real scheduler at DEBUG, leave no token or secret behind.

Three runs on a stack whose ``odc_default`` lives in its database: the listing example, a release that
defers its build to the triggerer (the trigger row is read while it waits), and a release after the API
client's tokens were revoked (401, one new exchange) whose test-stage deployment fails with ODC's error
messages. Then every file under the stack's home, every cell of every table (decrypted where Airflow
encrypts), the trigger row and the REST views of connections, Variables, task instances, rendered
fields and XComs are searched for every token the emulator issued and for the client secret.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet

from devtools.stack import AirflowStack

from ..lifecycle.conftest import web_app
from .leak_scan import Source, cached_token, database_cells, find, home_files, token_needles

LISTING, RELEASE = "odc_list_stages_and_assets", "odc_release_pipeline"
DEBUG_LINE = "ODC GET /api/portfolios/v2/environments -> 200"
ODC_ERROR = "Deployment of Claims Intake blocked: a required configuration is missing"


def rest_sources(stack: AirflowStack, runs: dict[str, list[str]]) -> list[Source]:
    """What the API server (and so the UI) shows: connections, Variables, task instances with their
    rendered fields, and every XCom entry's value."""

    def get(path: str) -> Source:
        resp = stack.rest("GET", path)
        assert resp.ok, f"GET {path} -> {resp.status_code}: {resp.text[:500]}"
        return f"rest {path}", resp.text

    sources = [get("/api/v2/connections"), get("/api/v2/connections/odc_default"), get("/api/v2/variables")]
    for dag_id, run_ids in runs.items():
        for run_id in run_ids:
            run_path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
            sources.append(get(f"{run_path}/taskInstances"))  # each with its rendered_fields
            entries = stack.rest("GET", f"{run_path}/taskInstances/~/xcomEntries?limit=100").json()["xcom_entries"]
            for entry in entries:
                task_path = f"{run_path}/taskInstances/{entry['task_id']}"
                sources.append(get(f"{task_path}/xcomEntries/{entry['key']}?map_index={entry['map_index']}"))
    return sources


def test_example_dags_leave_no_token_or_secret(airflow_stack_examples: AirflowStack, odc_emulator: Any) -> None:
    stack = airflow_stack_examples
    db_path = stack.sqlite_path
    assert db_path is not None
    fernet = Fernet(stack.fernet_key().encode())
    app = web_app(odc_emulator, with_release_build=False)

    listing = stack.run_dag(LISTING)
    assert listing["state"] == "success", stack.explain(LISTING, listing["dag_run_id"])

    # The build takes an hour on the emulator's clock, so the trigger row can be read while it waits.
    odc_emulator.configure(build_durations={"pending": 0.5, "running": 3600})
    release_id = stack.trigger_dag(RELEASE, conf={"asset": app["name"]})
    stack.wait_for_task_state(RELEASE, release_id, "build", "deferred")
    trigger_rows = list(database_cells(db_path, fernet, tables={"trigger", "task_instance"}))
    stack.wait_for_deferral_processed(RELEASE, release_id, "build")
    odc_emulator.advance(3600)
    release = stack.wait_for_run(RELEASE, release_id)
    assert release["state"] == "success", stack.explain(RELEASE, release_id)

    # Revoked tokens: the next call gets 401 and the hook exchanges once more. The test-stage deploy fails.
    before_revoking = odc_emulator.stats()["token_exchanges"]
    assert 1 <= before_revoking <= 2  # parallel cold tasks: one exchange, or two at worst (the lease)
    odc_emulator.revoke_tokens()
    odc_emulator.fail_next("deploy", messages=[ODC_ERROR])
    blocked = stack.run_dag(RELEASE, conf={"asset": app["name"]})
    assert blocked["state"] == "failed"
    states = {ti["task_id"]: ti["state"] for ti in stack.task_instances(RELEASE, blocked["dag_run_id"])}
    assert states["deploy_to_test_stage"] == "failed" and states["deploy_to_production"] == "upstream_failed"
    assert ODC_ERROR in stack.task_log(RELEASE, blocked["dag_run_id"], "deploy_to_test_stage")
    stats = odc_emulator.stats()
    assert stats["unauthorized"] >= 1 and stats["token_exchanges"] > before_revoking

    tokens = odc_emulator.minted_tokens()[-stats["token_exchanges"] :]
    needles = {"client secret": odc_emulator.client_secret, **token_needles(tokens)}
    runs = {LISTING: [listing["dag_run_id"]], RELEASE: [release_id, blocked["dag_run_id"]]}
    cells = list(database_cells(db_path, fernet))
    sources = [*home_files(stack.home), *cells, *trigger_rows, *rest_sources(stack, runs)]

    # The scan saw what it claims to scan.
    def texts(prefix: str) -> str:
        return "\n".join(text for where, text in [*cells, *trigger_rows] if where.startswith(prefix))

    assert DEBUG_LINE in "\n".join(text for where, text in sources if where.startswith("file logs/"))
    assert "OdcOperationTrigger" in texts("db trigger.classpath") and "odc_default" in texts("db trigger.kwargs")
    assert app["name"] in texts("db rendered_task_instance_fields.rendered_fields")
    assert any(where.endswith("/taskInstances") and app["name"] in text for where, text in sources)
    assert "odc_portal_url" in texts("db xcom.key") and "Development" in texts("db xcom.value")
    assert cached_token(stack, odc_emulator)[1] in tokens, "the Variable holds an issued token, encrypted"

    hits = find(needles, sources)
    # The canary: the secret is where the user put it, in the connection's password, which Airflow encrypts.
    assert {(hit.needle, hit.where) for hit in hits} == {("client secret", "db connection.password row 0 (decrypted)")}

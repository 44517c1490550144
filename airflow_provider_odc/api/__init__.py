"""One module per ODC API the provider uses: its paths, request bodies, typed results and operation kinds.

No I/O and no Airflow here: ``OdcHook`` sends the requests (its typed methods, e.g. ``find_asset``,
``start_build``, ``list_deployed_assets``) and these modules say what to send and how to read the answer.

* ``assets``: Asset Repository API (assets, revisions, tags).
* ``builds``: Build Operations API (builds, generated code).
* ``deployments``: Deployments API (deployment and publish operations).
* ``portfolios``: Portfolio API v2 (stages, which ODC calls environments; deployed assets).
* ``dependency_management``, ``code_quality``, ``external_libraries``, ``native_builds``, ``identity``:
  the long-running operations ``OdcOperationSensor`` polls.
* ``long_running``: what every long-running operation has in common (``OperationKind``).
"""

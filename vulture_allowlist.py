"""Names vulture (``make lint``) cannot see used: public API that users and tests call,
fields serialised by dataclasses/pydantic, and attributes set on other libraries' objects.

Add a name here only when it is used outside ``src/``; delete dead code instead.
"""

# ruff: noqa
from usergroups._typing import FloatVector, StrArray  # public type aliases
from usergroups.alignment.head import AlignmentHead
from usergroups.cli.main import entry_point  # [project.scripts]
from usergroups.embedding.onnx import _export_fp32, _quantize  # run by name in a child process
from usergroups.evaluation.splits import Split
from usergroups.fitcache import FitCache
from usergroups.pipeline import GroupDiscovery
from usergroups.recommend.group_popularity import GroupPopularity
from usergroups.refit import RefitReport
from usergroups.service.security import KeyRing
from usergroups.testing.synthetic import PlantedData

FloatVector, StrArray, entry_point, _export_fp32, _quantize
AlignmentHead.item_scores
Split.test_matrix
FitCache.enabled
GroupPopularity.recommend_groups
GroupDiscovery.recommend_all  # every user's top n as a table (the model directory writes arrays)
KeyRing.has_admin
PlantedData.labels_for
PlantedData.text_for_group
# refit.json fields (dataclasses.asdict)
RefitReport.n_users_before
RefitReport.n_users_after
RefitReport.n_users_kept_group
RefitReport.moves_by_reason
RefitReport.n_users_left
# response models of the HTTP API (pydantic fields, serialised by FastAPI)
_.name_source
_.known_to_model
_.unknown_items
# attributes read by the frameworks that own the objects
_.intra_op_num_threads  # onnxruntime.SessionOptions
_.inter_op_num_threads
_.graph_optimization_level
_.request_id  # starlette request.state
_.service  # FastAPI app.state
_.route_class  # FastAPI router
_.send_400_response  # uvicorn's protocol calls it on a request its parser refuses
_.runner_up  # pydantic fields of the /users answer (UserOut)
_.runner_up_confidence

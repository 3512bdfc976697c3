"""Wire codecs of the serving gateway: request bodies to conformed DataFrames, output frames to response bodies.

Pure functions of bytes and frames, with no HTTP framework, so the gateway can call them from a raw
request handler:

- the Open Inference Protocol v2 (KServe, Triton, MLServer), JSON and binary tensor data:
  :mod:`~modelsteward.serving.protocols.v2_request` (decoding; its tensors are read by
  :mod:`~modelsteward.serving.protocols.v2_tensors`), :mod:`~modelsteward.serving.protocols.v2_response`
  (encoding, metadata), :mod:`~modelsteward.serving.protocols.v2_wire` (datatypes, headers);
- :mod:`~modelsteward.serving.protocols.jsonrows`: the plain JSON protocol (``instances``,
  ``dataframe_split``, ``dataframe_records``, ``inputs``);
- shared by both: :mod:`~modelsteward.serving.protocols.frames` (typed columns to conformed frames and
  back) and :mod:`~modelsteward.serving.protocols.json_body` (JSON parsing and encoding fallbacks).
"""

from __future__ import annotations

from modelsteward.serving.protocols.jsonrows import decode_json_request, encode_json_response
from modelsteward.serving.protocols.v2_request import DecodedRequest, decode_request
from modelsteward.serving.protocols.v2_response import encode_response, model_metadata, server_metadata
from modelsteward.serving.protocols.v2_wire import BINARY_CONTENT_TYPE, DATATYPES, HEADER_LENGTH, JSON_CONTENT_TYPE

__all__ = [
    "BINARY_CONTENT_TYPE",
    "DATATYPES",
    "DecodedRequest",
    "HEADER_LENGTH",
    "JSON_CONTENT_TYPE",
    "decode_json_request",
    "decode_request",
    "encode_json_response",
    "encode_response",
    "model_metadata",
    "server_metadata",
]

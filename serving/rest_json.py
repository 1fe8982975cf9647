"""TF Serving's REST JSON formats (api_rest.md, util/json_tensor.cc): request bodies in, response bodies out.

Requests are read as TF Serving reads them with rapidjson: NaN, Infinity and
-Infinity (also Inf, -Inf and -NaN) are numbers, what follows the document is
ignored, strings are bytes (UTF-8 is not checked), and each tensor is built
for the dtype its signature declares, with TF Serving's error messages.

Row format (`instances`): a list with one entry per example, each either a
value of the only input or an object from input name to value. Columnar
format (`inputs`): the value of the only input, or an object from input name
to a batched value. `{"b64": "..."}` stands for binary strings. Answers
follow the request's format: `predictions` (a list of values per example, or
of objects when there are several outputs) or `outputs`.

Numbers are written as TF Serving writes them: a float with six significant
digits if that reads back as the same float, else with all the digits its
type needs (9 for float32, 17 for float64), NaN, Infinity and -Infinity as
bare tokens. Here each float becomes the float64 that TF Serving's text reads
as, and Python's shortest repr writes that float64, so that a client parses
the same numbers from both servers.
"""

import base64
import binascii
import codecs
import decimal
import fractions
import json
import math
import re

import numpy as np
import tensorflow as tf

from serving.errors import ServingError
from serving.tensors import dtype_string as type_name

MAX_DIMS = 64  # NumPy's limit on dimensions: deeper tensors are refused before recursing into them
MAX_DEBUG_BYTES = 256  # TF Serving cuts the JSON it quotes in error messages at this size
DEFAULT_SIGNATURE = "serving_default"


def _raw_bytes(error):
    """Encoding error handler: the bytes surrogateescape stood for, and lone surrogates from \\uXXXX escapes."""
    chars = error.object[error.start : error.end]
    data = b"".join(
        bytes([ord(c) - 0xDC00]) if 0xDC80 <= ord(c) <= 0xDCFF else c.encode("utf-8", "surrogatepass") for c in chars
    )
    return data, error.end


RAW_BYTES = "rest_json.raw_bytes"
codecs.register_error(RAW_BYTES, _raw_bytes)


def _invalid(message):
    return ServingError("INVALID_ARGUMENT", message)


# -- rapidjson's text of values, for error messages ---------------------------------------------------------------


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _double_text(value):
    """rapidjson's Writer::Double text: shortest digits, "1.0", "0.001", "1e30", "1.5e-7"; None for NaN and inf."""
    if value != value or value in (float("inf"), float("-inf")):
        return None
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    _, all_digits, k = decimal.Decimal(repr(abs(value))).as_tuple()  # repr: the shortest digits, as Grisu's
    digits = "".join(map(str, all_digits)).rstrip("0")
    k += len(all_digits) - len(digits)
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= value < 10^kk
    if 0 <= k and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return ("-" if value < 0 else "") + text


def _string_text(text):
    escaped = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            escaped.append("\\" + char)
        elif code < 0x20:
            escaped.append({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u00{code:02X}"))
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def debug_string(value, limit=MAX_DEBUG_BYTES):
    """A JSON value as TF Serving quotes it in errors: rapidjson's PrettyWriter, arrays on one line, cut near `limit`.

    Writing stops before the first token that would start past `limit`
    characters, and at NaN or an infinity, which its writer refuses.
    """
    out, size = [], 0
    levels = []  # [in_array, values written] per open array or object

    def put(text):
        nonlocal size
        out.append(text)
        size += len(text)

    def prefix():
        if not levels:
            return
        level = levels[-1]
        if level[0]:
            if level[1]:
                put(", ")
        else:
            if level[1]:
                put(",\n" if level[1] % 2 == 0 else ": ")
            else:
                put("\n")
            if level[1] % 2 == 0:
                put("    " * len(levels))
        level[1] += 1

    def write(node):
        if size >= limit:
            return False
        if isinstance(node, dict):
            prefix()
            put("{")
            levels.append([False, 0])
            for key, item in node.items():
                if size >= limit:
                    return False
                prefix()
                put(_string_text(key))
                if not write(item):
                    return False
            if size >= limit:
                return False
            written = levels.pop()[1]
            put(("\n" + "    " * len(levels) if written else "") + "}")
            return True
        if isinstance(node, list):
            prefix()
            put("[")
            levels.append([True, 0])
            for item in node:
                if not write(item):
                    return False
            if size >= limit:
                return False
            levels.pop()
            put("]")
            return True
        prefix()
        if node is None or isinstance(node, bool):
            put({None: "null", True: "true", False: "false"}[node])
        elif isinstance(node, str):
            put(_string_text(node))
        elif isinstance(node, int) and -(2**63) <= node < 2**64:
            put(str(node))
        else:
            text = _double_text(float(node))
            if text is None:
                return False
            put(text)
        return True

    write(value)
    return "".join(out)


def _format_error(value, *parts):
    return _invalid(f"JSON Value: {debug_string(value)} " + "".join(parts))


# -- reading request bodies ------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()  # NaN, Infinity and -Infinity are numbers, as with rapidjson's kParseNanAndInfFlag
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_HIGH_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB]")
_LONE_HIGH_SURROGATE = re.compile(  # an escaped high surrogate not followed by an escaped low one
    r"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)
_NUMBER_SHAPES = bytes.maketrans(b"123456789E", b"000000000e")  # every digit a 0, every exponent an e
_STRING_OR_NONFINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?NaN|-?Inf(?:inity)?', re.S)
_TOKEN_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_RAPIDJSON_MESSAGES = {  # Python's json messages -> rapidjson's GetParseError_En
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


def _may_overflow(raw):
    """Whether a body may hold a number too big for a double, which rapidjson refuses: 100 digits, or e+NNN.

    Past 1.8e308 a number needs 309 digits, or 100 and an exponent, or an
    exponent of three digits. A cheap test (a regular expression costs more
    than the parsing on a body of many numbers); the numbers are then checked.
    """
    shapes = raw.translate(_NUMBER_SHAPES)
    return b"0" * 100 in shapes or b"e000" in shapes or b"e+000" in shapes


def _nonfinite_spelling(match):
    """rapidjson also reads Inf, -Inf and -NaN; Python's json only NaN, Infinity and -Infinity."""
    return {"-NaN": "NaN", "Inf": "Infinity", "-Inf": "-Infinity"}.get(match.group(), match.group())


class _NumberTooBig(Exception):
    pass


def _checked_float(text):
    value = float(text)
    if math.isinf(value):
        raise _NumberTooBig(text)
    return value


def _checked_int(text):
    if len(text.lstrip("-")) > 308 and math.isinf(float(text)):
        raise _NumberTooBig(text)
    return int(text)


_CHECKED_DECODER = json.JSONDecoder(parse_float=_checked_float, parse_int=_checked_int)


def _offset(text, position, skipped):
    """The byte offset of a character position, as rapidjson reports offsets."""
    return skipped + len(text[:position].encode("utf-8", RAW_BYTES))


def _parse_error(message, offset=None):
    return _invalid(f"JSON Parse error: {message}" + ("" if offset is None else f" at offset: {offset}"))


def _decode_error(error, text, skipped):
    message = _RAPIDJSON_MESSAGES.get(error.msg)
    if error.msg == "Expecting ',' delimiter":
        depth = []  # the brackets open at the error, to tell an array from an object
        for token in _TOKEN_OR_BRACKET.finditer(text, 0, error.pos):
            if token.group() in ("[", "{"):
                depth.append(token.group())
            elif token.group() in ("]", "}") and depth:
                depth.pop()
        message = (
            "Missing a comma or ']' after an array element."
            if depth[-1:] == ["["]
            else ("Missing a comma or '}' after an object member.")
        )
    elif error.msg.startswith("Invalid control character"):
        message = (
            "Missing a closing quotation mark in string."
            if text[error.pos] == "\x00"
            else "Invalid escape character in string."
        )
    return _parse_error(message or error.msg + ".", _offset(text, error.pos, skipped))


def parse_json(raw):
    """The JSON object of a request body, read as TF Serving reads it (rapidjson, iterative, NaN and Inf allowed).

    Returns:
        `(document, strings)`: the object, and the error handler that turns
        its strings back into the bytes they stand for (`str.encode("utf-8",
        strings)`): in a UTF-8 body a lone surrogate comes from a \\uXXXX
        escape, which rapidjson writes as UTF-8; a body with other bytes was
        read with surrogateescape, and those bytes pass through as rapidjson
        passes them.

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's "JSON Parse error: ..."
            or "... Is not object" message.
    """
    if not raw:
        raise _parse_error("The document is empty")
    try:
        text, strings = raw.decode("utf-8"), "surrogatepass"
    except UnicodeDecodeError:
        text, strings = raw.decode("utf-8", "surrogateescape"), RAW_BYTES
    skipped = 0
    if text.startswith("\ufeff"):  # rapidjson's UTF-8 stream skips a byte order mark
        text, skipped = text[1:], 3
    start = _WHITESPACE.match(text).end()
    if start == len(text):
        raise _parse_error("The document is empty.", _offset(text, start, skipped))
    if _HIGH_SURROGATE_ESCAPE.search(text):
        lone = _LONE_HIGH_SURROGATE.search(text)
        if lone:
            raise _parse_error("The surrogate pair in string is invalid.", _offset(text, lone.start(1), skipped))
    decoder = _CHECKED_DECODER if _may_overflow(raw) else _DECODER  # rapidjson refuses what overflows
    try:
        try:
            document, _ = decoder.raw_decode(text, start)  # what follows the document is not read
        except json.JSONDecodeError as error:
            rewritten = _STRING_OR_NONFINITE.sub(_nonfinite_spelling, text)
            if rewritten == text:
                raise _decode_error(error, text, skipped) from None
            try:
                document, _ = decoder.raw_decode(rewritten, start)
            except json.JSONDecodeError:
                raise _decode_error(error, text, skipped) from None
    except _NumberTooBig as error:
        offset = _offset(text, text.find(str(error)), skipped)
        raise _parse_error("Number too big to be stored in double.", offset) from None
    except RecursionError:
        raise _parse_error("the document is nested too deeply for this server to read") from None
    except ValueError as error:  # integers of more digits than Python converts
        raise _parse_error(f"{error}") from None
    if not isinstance(document, dict):
        raise _format_error(document, "Is not object")
    return document, strings


def signature_name(document):
    """The request's `signature_name`, "" when it has none."""
    value = document.get("signature_name", "")
    if not isinstance(value, str):
        raise _format_error(document, "not formatted correctly. 'signature_name' key must be a string value.")
    return value


# -- tensors of a predict request ------------------------------------------------------------------------------------


def _type_error(value, dtype):
    return _invalid(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is not of expected type: {type_name(dtype)}"
    )


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(text):
    """absl::Base64Unescape: standard alphabet, padding optional, whitespace skipped; None when invalid."""
    text = re.sub(r"[ \t\n\r\f\v]", "", text)
    if "=" not in text:
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64_value(value):
    if not _is_b64(value):
        raise _format_error(value, "not formatted correctly for base64 data")
    decoded = _b64decode(value["b64"])
    if decoded is None:
        raise _invalid("Unable to base64 decode")
    return decoded


_INT_RANGES = {  # rapidjson's IsInt, IsInt64, IsUint, IsUint64
    tf.int32: (-(2**31), 2**31),
    tf.int16: (-(2**31), 2**31),
    tf.int8: (-(2**31), 2**31),
    tf.uint8: (-(2**31), 2**31),
    tf.int64: (-(2**63), 2**63),
    tf.uint32: (0, 2**32),
    tf.uint64: (0, 2**64),
}


def _leaf(value, dtype, strings):
    """One JSON value as an element of `dtype` (json_tensor.cc's AddValueToTensor)."""
    if isinstance(value, dict):
        if dtype == tf.string:
            return _b64_value(value)
        raise _type_error(value, dtype)
    if dtype in (tf.float32, tf.float64):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
            raise _type_error(value, dtype)
        return value
    if dtype == tf.string:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", strings)
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {debug_string(value)} to type: {type_name(dtype)}")


def _dense_shape(value):
    """The shape of a JSON value, read off the first element at each level (GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level, shape, dtype, strings, out):
    """Appends the elements of `value` to `out`, checking it against `shape` (FillTensorProto)."""
    if not isinstance(value, list):
        if level != len(shape):
            raise _invalid(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {len(shape)}"
            )
        out.append(_leaf(value, dtype, strings))
        return
    if level >= len(shape):
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise _invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, strings, out)


def _numpy_dtype(dtype):
    return object if dtype == tf.string else dtype.as_numpy_dtype


def _exact_tensor(value, dtype, strings):
    """`(elements, shape)` of one JSON value, with TF Serving's checks and messages."""
    shape = _dense_shape(value)
    if len(shape) > MAX_DIMS:
        raise _invalid(f"lists nested deeper than {MAX_DIMS} dimensions: NumPy holds at most {MAX_DIMS}")
    elements = []
    _fill(value, 0, shape, dtype, strings, elements)
    return elements, shape


def _to_array(elements, shape, dtype):
    array = np.empty(len(elements), dtype=_numpy_dtype(dtype))
    if dtype == tf.float32:  # as rapidjson's GetFloat: the double, then the float
        with np.errstate(over="ignore"):
            array[:] = np.asarray(elements, dtype=np.float64)
    elif dtype in (tf.int8, tf.int16, tf.uint8):  # TF Serving's int_val field, cast as Tensor::FromProto casts
        array[:] = np.asarray(elements, dtype=np.int64).astype(array.dtype)
    else:
        array[:] = elements
    return array.reshape(shape)


def _fast_tensor(value, dtype, has_bools):
    """The tensor of a well-formed numeric or boolean JSON value through NumPy, or None to take `_exact_tensor`.

    NumPy reads the nested lists in C, but turns true and false into numbers
    and mixes types silently; whatever it cannot prove fine goes the exact way.
    """
    if dtype == tf.string or not (dtype.is_floating or dtype.is_integer or dtype == tf.bool):
        return None
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim > MAX_DIMS:
        return None
    if array.size == 0:  # no element to check: TF Serving makes an empty tensor of any dtype
        return np.zeros(array.shape, dtype=dtype.as_numpy_dtype)
    kind = array.dtype.kind
    if dtype == tf.bool:
        return array if kind == "b" else None
    if has_bools or kind not in "iuf":
        return None
    if dtype in (tf.float32, tf.float64):
        if dtype == tf.float32 and kind in "iu":
            array = array.astype(np.float64)
        with np.errstate(over="ignore"):
            return array.astype(dtype.as_numpy_dtype)
    if dtype not in _INT_RANGES or kind not in "iu":
        return None
    low, high = _INT_RANGES[dtype]
    if array.min() < low or array.max() >= high:
        return None
    return array.astype(dtype.as_numpy_dtype)


def _tensor(value, dtype, strings, has_bools):
    array = _fast_tensor(value, dtype, has_bools)
    if array is None:
        elements, shape = _exact_tensor(value, dtype, strings)
        array = _to_array(elements, shape, dtype)
    return array


def _status_text(error):
    return f"{error.code}: {error.message}"


def _instances(instances, input_dtypes, strings, has_bools):
    """The tensors of a row-format request (FillTensorMapFromInstancesList)."""
    names = list(input_dtypes)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not as_objects:
        name = names[0]
        if not any(isinstance(i, dict) and not _is_b64(i) for i in instances):
            array = _fast_tensor(instances, input_dtypes[name], has_bools)
            if array is not None:
                return {name: array}
    elif all(isinstance(i, dict) and not _is_b64(i) and set(i) == set(names) for i in instances):
        arrays = {name: _fast_tensor([i[name] for i in instances], input_dtypes[name], has_bools) for name in names}
        if all(array is not None for array in arrays.values()):
            return arrays
    return _exact_instances(instances, input_dtypes, strings, as_objects)


def _exact_instances(instances, input_dtypes, strings, as_objects):
    elements = {}  # name -> list of element lists, one per instance
    shapes = {}  # name -> (size, shape) of the first instance

    def add(index, name, value, where):
        try:
            if name not in input_dtypes:
                raise _invalid(f"JSON object: does not have named input: {name}")
            values, shape = _exact_tensor(value, input_dtypes[name], strings)
            if name not in shapes:
                shapes[name] = (len(values), shape)
            elif shapes[name][0] != len(values):
                raise _invalid(f"Expecting tensor size: {shapes[name][0]} but got: {len(values)}")
            elif shapes[name][1] != shape:
                raise _invalid(
                    f"Expecting shape [{','.join(map(str, shapes[name][1]))}] but got: [{','.join(map(str, shape))}]"
                )
        except ServingError as error:
            raise _invalid(
                f"Failed to process element: {index}{where} of 'instances' list. Error: {_status_text(error)}"
            ) from None
        elements.setdefault(name, []).extend(values)

    names = sorted(input_dtypes)
    for index, instance in enumerate(instances):
        is_object = isinstance(instance, dict) and not _is_b64(instance)
        if as_objects:
            if not is_object:
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            for name, value in instance.items():
                add(index, name, value, f" key: {name}")
            if set(instance) != set(names):
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {debug_string(instance)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if is_object:
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            add(index, next(iter(input_dtypes)), instance, "")
    return {
        name: _to_array(values, [len(instances)] + shapes[name][1], input_dtypes[name])
        for name, values in elements.items()
    }


def parse_predict(document, input_dtypes, strings="surrogatepass", has_bools=True):
    """The input tensors of a predict request and its format, `"row"` or `"columnar"` (FillPredictRequestFromJson).

    Args:
        document: The request's JSON object.
        input_dtypes: Dict from the signature's input names to their declared
            `tf.DType`s, in the signature's order.
        strings: `parse_json`'s error handler for the bytes of strings.
        has_bools: False when the body holds no `true` or `false`, which lets
            NumPy read numeric tensors (it would read booleans as numbers).

    Returns:
        `(inputs, format)`: a dict from input name to NumPy array, and the
        request's format.
    """
    if "instances" in document:
        if "inputs" in document:
            raise _format_error(
                document, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
            )
        instances = document["instances"]
        if not isinstance(instances, list):
            raise _format_error(document, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(document, "No values in 'instances' array")
        return _instances(instances, input_dtypes, strings, has_bools), "row"
    if "inputs" not in document:
        raise _invalid("Missing 'inputs' or 'instances' key")
    value = document["inputs"]
    if not isinstance(value, dict) or _is_b64(value):
        if len(input_dtypes) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        ((name, dtype),) = input_dtypes.items()
        return {name: _tensor(value, dtype, strings, has_bools)}, "columnar"
    inputs = {}
    for name, dtype in input_dtypes.items():
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        inputs[name] = _tensor(value[name], dtype, strings, has_bools)
    return inputs, "columnar"


# -- tf.Examples of a classify or regress request ------------------------------------------------------------------


def _feature(name, content, strings):
    """A tf.train.Feature of a JSON value or list of values (AddValueToFeature)."""
    kind, values = None, []

    def expect(wanted):
        nonlocal kind
        if kind not in (None, wanted):
            raise _invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = wanted

    for value in content if isinstance(content, list) else [content]:
        if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
            raise _invalid(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
        if isinstance(value, bool):
            expect("int64")
            values.append(int(value))
        elif isinstance(value, dict):
            expect("bytes")
            values.append(_b64_value(value))
        elif isinstance(value, str):
            expect("bytes")
            values.append(value.encode("utf-8", strings))
        elif isinstance(value, float) or not -(2**63) <= value < 2**64:  # rapidjson reads larger integers as doubles
            expect("float")
            values.append(float(value))
        else:
            expect("int64")
            if value >= 2**63:
                raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
            values.append(value)
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if kind == "float":
        with np.errstate(over="ignore"):
            return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values).astype(np.float32).tolist()))
    return tf.train.Feature()


def _example_features(value, strings):
    if not isinstance(value, dict):
        raise _invalid(f"Example must be JSON object but got JSON {_json_type(value)}")
    features = {}
    for name, content in value.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a protobuf map key here must be UTF-8; TF Serving's C++ protobuf takes bytes
            raise _invalid(f"Feature: {debug_string(name)} has a name that is not valid UTF-8") from None
        features[name] = _feature(name, content, strings)
    return features


def parse_examples(document, strings="surrogatepass"):
    """Serialized `tf.Example`s of a classify/regress body: `examples`, each merged over `context`.

    `strings` is `parse_json`'s error handler for the bytes of strings.
    """
    context = _example_features(document["context"], strings) if "context" in document else {}
    examples = document.get("examples")
    if "examples" not in document:
        raise _format_error(document, "When method is classify, key 'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise _format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(document, "'examples' value is an empty array")
    serialized = []
    for example in examples:
        proto = tf.train.Example()
        for name, feature in {**context, **_example_features(example, strings)}.items():
            proto.features.feature[name].CopyFrom(feature)
        serialized.append(proto.SerializeToString())
    return np.array(serialized, dtype=object)


# -- numbers as TF Serving writes them -------------------------------------------------------------------------------

_POWERS_OF_TEN = 10.0 ** np.arange(23)  # exact float64s, 1 to 1e22
_EXTENDED = np.finfo(np.longdouble).nmant >= 63  # x87 80-bit or better: 11 bits to spare over float64
_EXTENDED_POWERS = np.array([f"1e{k}" for k in range(-64, 65)], dtype=np.longdouble)  # 10**k, k = -64..64


def _round_to_digits(x, digits):
    """`(value, sure)`: each `x` rounded to `digits` significant decimal digits, as the float64 nearest that decimal.

    `x` holds finite non-zero float32 values as float64s. Where one exact
    power of ten scales them (|k| <= 22 decimal places), scaling rounds at
    most once and dividing the whole number back rounds once, as parsing the
    decimal's text does. Beyond that, extended precision carries the
    computation with bits to spare. `sure` is False where the scaled value
    is within those errors of a tie, of the whole number or of the float64.
    """
    magnitude = np.abs(x)
    k = digits - 1 - np.floor(np.log10(magnitude)).astype(np.int64)  # decimal places that keep `digits` digits
    near = np.abs(k) <= 22
    power = _POWERS_OF_TEN[np.minimum(np.abs(k), 22)]
    scaled = np.where(k >= 0, magnitude * power, magnitude / power)
    whole = np.rint(scaled)
    value = np.where(k >= 0, whole / power, whole * power)
    sure = near & (np.abs(np.abs(scaled - whole) - 0.5) > scaled * 2.0**-50)
    if _EXTENDED and not near.all():
        far = ~near
        powers = _EXTENDED_POWERS[k[far] + 64]  # float32 values need |k| <= 54
        far_scaled = magnitude[far].astype(np.longdouble) * powers
        far_whole = np.rint(far_scaled)
        exact = far_whole / powers
        far_value = exact.astype(np.float64)
        ulps = (exact - far_value.astype(np.longdouble)) / np.spacing(far_value).astype(np.longdouble)
        value[far] = far_value
        sure[far] = (np.abs(np.abs(far_scaled - far_whole) - 0.5) > far_scaled * 2.0**-56) & (
            np.abs(np.abs(ulps) - 0.5) > 2.0**-8
        )
    return np.copysign(value, x), sure


def _float32_units(value):
    """Each float64 in float32 ulps at its magnitude (normal or subnormal): a fraction of a half is a float32 tie."""
    _, exponent = np.frexp(value)
    return np.ldexp(np.abs(value), -(np.maximum(exponent - 1, -126) - 23))


def _nearest_float32(text):
    """The float32 nearest to a decimal text, ties to even, from the exact decimal rather than its float64."""
    exact = fractions.Fraction(text)
    candidate = np.float32(float(text))
    best = candidate
    for neighbour in (np.nextafter(candidate, np.float32(np.inf)), np.nextafter(candidate, np.float32(-np.inf))):
        if not np.isfinite(neighbour):
            continue
        distance = abs(fractions.Fraction(float(neighbour)) - exact)
        best_distance = abs(fractions.Fraction(float(best)) - exact)
        if distance < best_distance or (distance == best_distance and neighbour.view(np.uint32) % 2 == 0):
            best = neighbour
    return best


def _written_through_text(values, floats):
    """TF Serving's way for a few values: their "%.6g" text if it reads back as the float32, else "%.9g"."""
    texts = ["%.6g" % v for v in values.tolist()]
    six = np.array([float(text) for text in texts])  # Python's float() reads a text faster than NumPy's cast
    reads_back = six.astype(np.float32) == floats
    units = _float32_units(six)
    for i in np.flatnonzero(units - np.floor(units) == 0.5):  # the float64 is a float32 tie: the decimal decides
        reads_back[i] = _nearest_float32(texts[i]) == floats[i]
    for i in np.flatnonzero(~reads_back):
        six[i] = float("%.9g" % values[i])
    return six


_FEW_VALUES = 16


def written_floats(array):
    """A float array as the float64s that TF Serving's JSON text of it reads back as.

    TF Serving (json_tensor.cc's WriteDecimal) writes six significant
    digits when they read back as the same value, else `max_digits10` (9 for
    float32, 17 for float64). 17 digits always read back as the float64
    itself, so float64 arrays come back unchanged; float32 values become the
    float64 of their 6- or 9-digit text (2.55, not 2.549999952316284).
    """
    if array.dtype != np.float32:
        return array
    out = array.astype(np.float64)
    finite = np.isfinite(out) & (out != 0)
    if not finite.any():
        return out
    values, floats = out[finite], array[finite]
    if values.size <= _FEW_VALUES:  # a response of a few rows: the text costs less than the arithmetic's steps
        out[finite] = _written_through_text(values, floats)
        return out
    six, six_sure = _round_to_digits(values, 6)
    nine, nine_sure = _round_to_digits(values, 9)
    units = _float32_units(six)
    by_text = ~(six_sure & nine_sure) | (units - np.floor(units) == 0.5)  # a float32 tie: the decimal decides
    chosen = np.where(six.astype(np.float32) == floats, six, nine)
    if by_text.any():
        chosen[by_text] = _written_through_text(values[by_text], floats[by_text])
    out[finite] = chosen
    return out


# -- response bodies -------------------------------------------------------------------------------------------------

_INTEGER_KINDS = {np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64)}


def _text(value):
    return value.decode("utf-8", "surrogateescape")


def _json_tensor(array, name):
    """A tensor as JSON-ready nested lists (AddTensorValues); bytes as {"b64": ...} for names ending in _bytes."""
    array = np.asarray(array)
    if array.dtype in (np.float32, np.float64):
        return written_floats(array).tolist()
    if array.dtype in _INTEGER_KINDS or array.dtype == np.bool_:
        return array.tolist()
    if array.dtype == object and all(isinstance(v, bytes) for v in array.flat):
        if name.endswith("_bytes"):
            flat = [{"b64": base64.b64encode(v).decode("ascii")} for v in array.flat]
        else:
            flat = [_text(v) for v in array.flat]
        converted = np.empty(len(flat), dtype=object)
        converted[:] = flat
        return converted.reshape(array.shape).tolist()
    raise _invalid(f"Failed to write JSON value for tensor type: {type_name(array.dtype)}")


_SINGLE_LINE = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False) makes one per call


def _single_line(value):
    """rapidjson's single-line array text: ", " between elements."""
    return _SINGLE_LINE.encode(value)


def encode(text):
    """Response text as bytes: strings that held not-UTF-8 bytes give those bytes back, as TF Serving writes them."""
    return text.encode("utf-8", RAW_BYTES)


def predict_response(outputs, request_format):
    """The body of a predict response (MakeJsonFromTensors), in TF Serving's layout."""
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    if request_format == "columnar":
        if len(outputs) == 1:
            ((name, value),) = outputs.items()
            return encode('{\n    "outputs": ' + _single_line(_json_tensor(value, name)) + "\n}")
        members = ",\n        ".join(
            f"{_single_line(name)}: {_single_line(_json_tensor(value, name))}" for name, value in outputs.items()
        )
        return encode('{\n    "outputs": {\n        ' + members + "\n    }\n}")
    batch_size = None
    for name, value in outputs.items():
        if np.ndim(value) == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch_size is not None and np.shape(value)[0] != batch_size:
            raise _invalid(
                f"Tensor name: {name} has inconsistent batch size: {np.shape(value)[0]} expecting: {batch_size}"
            )
        batch_size = np.shape(value)[0]
    if not batch_size:
        return encode('{\n    "predictions": []\n}')
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return encode('{\n    "predictions": [' + _single_line(_json_tensor(value, name))[1:-1] + "\n    ]\n}")
    columns = {_single_line(name): _json_tensor(value, name) for name, value in outputs.items()}
    rows = (
        "\n        {"
        + ",".join(f"\n            {key}: {_single_line(column[i])}" for key, column in columns.items())
        + "\n        }"
        for i in range(batch_size)
    )
    return encode('{\n    "predictions": [' + ",".join(rows) + "\n    ]\n}")


def classify_response(classes, scores):
    """The body of a classify response: `[label, score]` pairs per example (MakeJsonFromClassificationResult)."""
    rows, width = (scores if scores is not None else classes).shape[:2]
    labels = [[_text(c) for c in row] for row in classes.tolist()] if classes is not None else [[""] * width] * rows
    values = [[0.0] * width] * rows if scores is None else written_floats(np.asarray(scores, dtype=np.float32)).tolist()
    results = [[[label, score] for label, score in zip(labels[i], values[i])] for i in range(rows)]
    return encode('{\n    "results": [' + _single_line(results)[1:-1] + "\n    ]\n}")


def regress_response(values):
    """The body of a regress response: one float per example (MakeJsonFromRegressionResult)."""
    written = written_floats(np.asarray(values, dtype=np.float32)).tolist()
    return encode('{\n    "results": ' + _single_line(written) + "\n}")


def error_response(message):
    """The body of an error (MakeJsonFromStatus)."""
    return encode('{\n    "error": ' + _single_line(message) + "\n}")

import io
import os
from typing import Any, Dict, List, Literal, Optional, Union, overload

from . import lineage as lineage

__version__: str

_Path = Union[str, "os.PathLike[str]"]

class MlvError(Exception):
    message: str
    hint: Optional[str]

class RefusedError(MlvError): ...
class IntegrityError(MlvError): ...
class BusyError(MlvError): ...
class EnvironmentError(MlvError): ...
class FailureError(MlvError): ...

@overload
def open(
    path: _Path,
    repo: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    remote: Optional[str] = ...,
    mode: Literal["rb"] = ...,
    encoding: None = ...,
) -> io.BufferedReader: ...
@overload
def open(
    path: _Path,
    repo: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    remote: Optional[str] = ...,
    mode: Literal["r", "rt"] = ...,
    encoding: Optional[str] = ...,
) -> io.TextIOWrapper: ...
@overload
def read(
    path: _Path,
    repo: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    remote: Optional[str] = ...,
    mode: Literal["rb"] = ...,
    encoding: None = ...,
) -> bytes: ...
@overload
def read(
    path: _Path,
    repo: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    remote: Optional[str] = ...,
    mode: Literal["r", "rt"] = ...,
    encoding: Optional[str] = ...,
) -> str: ...
def get_url(
    path: _Path,
    repo: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    remote: Optional[str] = ...,
) -> Union[str, Dict[str, str]]: ...
def ls(
    repo: Optional[_Path] = ...,
    path: Optional[_Path] = ...,
    rev: Optional[str] = ...,
    recursive: bool = ...,
) -> List[Dict[str, Any]]: ...

"""The uid and gid a container of an image runs as: its `USER`, resolved in the image.

Secret files and encrypted volumes are owned by this user. A numeric `uid[:gid]` is taken
as is; a name is looked up in the image's own /etc/passwd and /etc/group (the host's
numbers usually differ); an empty USER is root.
"""

from __future__ import annotations

import io
import tarfile

import docker
import docker.errors

from ozwald_agent.runtime.errors import ContainerRuntimeError


class ImageUserError(ContainerRuntimeError):
    """The user an image runs as could not be resolved to numbers."""

    reason = "IMAGE_USER_UNRESOLVED"


_REMEDY = "give the image a numeric USER (uid:gid)"


def image_user(client: docker.DockerClient, image: str) -> tuple[int, int]:
    try:
        config = client.images.get(image).attrs.get("Config") or {}
    except docker.errors.DockerException as e:
        raise ImageUserError(f"cannot read the user of image {image}: {e}") from e
    name, _, group = str(config.get("User") or "").partition(":")
    if not name:
        return 0, 0
    uid = int(name) if name.isdigit() else _lookup(client, image, "/etc/passwd", name, 2)
    if group:
        gid = int(group) if group.isdigit() else _lookup(client, image, "/etc/group", group, 2)
    elif name.isdigit():
        gid = uid
    else:
        gid = _lookup(client, image, "/etc/passwd", name, 3)
    return uid, gid


def _lookup(client: docker.DockerClient, image: str, path: str, name: str, column: int) -> int:
    container = None
    try:
        container = client.containers.create(image, command=["true"], network_disabled=True)
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            text = member.read().decode() if member else ""
    except (docker.errors.DockerException, tarfile.TarError, IndexError) as e:
        raise ImageUserError(
            f"cannot resolve user {name!r} of image {image}: {e}", remedy=_REMEDY
        ) from e
    finally:
        if container is not None:
            container.remove(force=True)
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == name and len(fields) > column and fields[column].isdigit():
            return int(fields[column])
    raise ImageUserError(f"image {image} has no {name!r} in {path}", remedy=_REMEDY)

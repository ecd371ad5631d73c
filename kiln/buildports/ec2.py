"""`kiln build`'s EC2: the actions of a live `kiln serve`, called over HTTP with botocore (the
Ec2Port of kiln/services/builds/ports.py). Every call is signed as the building account; each
method waits for its result, so the build reads top to bottom."""

from __future__ import annotations

import time
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from kiln import errors
from kiln.errors import ErrorCode, KilnError
from kiln.services.builds.ports import Launched, LaunchRequest

WAIT_S = 1800.0  # guards against waiting forever, never a speed requirement
POLL_S = 1.0
#: How long a refused connection is retried: a restart of kiln serve (its instances keep
#: running, docs/instances.md) does not fail the build. Only refused connections are retried:
#: the request was never sent, so no action runs twice.
RESTART_GRACE_S = 120.0


def _error(e: ClientError) -> KilnError:
    err = e.response.get("Error", {})
    code = str(err.get("Code", "InternalError"))
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    return KilnError(ErrorCode(code, status), str(err.get("Message", code)))


class HttpEc2:
    def __init__(self, endpoint: str, region: str, access_key_id: str, secret: str) -> None:
        self.endpoint, self.region = endpoint, region
        self._creds = (access_key_id, secret)
        self._clients: dict[str, Any] = {}
        self._answered = False  # a server that never answered is not waited for

    def _ec2(self, region: str | None = None) -> Any:
        region = region or self.region
        if region not in self._clients:
            self._clients[region] = botocore.session.get_session().create_client(
                "ec2",
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id=self._creds[0],
                aws_secret_access_key=self._creds[1],
                config=Config(retries={"max_attempts": 2}, read_timeout=120),
            )
        return self._clients[region]

    def _call(self, name: str, region: str | None = None, **kwargs: Any) -> Any:
        deadline = time.monotonic() + RESTART_GRACE_S
        while True:
            try:
                answer = getattr(self._ec2(region), name)(**kwargs)
            except ClientError as e:
                self._answered = True
                raise _error(e) from None
            except EndpointConnectionError as e:
                if self._answered and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                    continue
                raise KilnError(
                    errors.InternalError, f"kiln serve at {self.endpoint} did not answer: {e}"
                ) from None
            except BotoCoreError as e:
                raise KilnError(
                    errors.InternalError, f"kiln serve at {self.endpoint} did not answer: {e}"
                ) from None
            self._answered = True
            return answer

    def _until(self, what: str, probe: Any) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() > deadline:
                raise KilnError(errors.InternalError, f"timed out waiting for {what}")
            time.sleep(POLL_S)

    def describe_image(self, image_id: str) -> dict[str, object] | None:
        try:
            found = self._ec2().describe_images(ImageIds=[image_id])["Images"]
        except ClientError as e:
            if "NotFound" in str(e.response.get("Error", {}).get("Code")):
                return None
            raise _error(e) from None
        except BotoCoreError as e:
            raise KilnError(
                errors.InternalError, f"kiln serve at {self.endpoint} did not answer: {e}"
            ) from None
        return dict(found[0]) if found else None

    def find_image_by_name(self, name: str) -> str | None:
        found = self._call("describe_images", Filters=[{"Name": "name", "Values": [name]}])[
            "Images"
        ]
        available = [i for i in found if i.get("State") == "available"]
        if not available:
            return None
        return str(max(available, key=lambda i: str(i.get("CreationDate", "")))["ImageId"])

    def create_build_access(self, name: str) -> tuple[str, str]:
        key = self._call("create_key_pair", KeyName=name, KeyType="ed25519")["KeyMaterial"]
        group = self._call(
            "create_security_group", GroupName=name, Description="kiln build: SSH in"
        )["GroupId"]
        self._call(
            "authorize_security_group_ingress",
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        return str(key), str(group)

    def delete_build_access(self, name: str, group_id: str) -> None:
        """Delete the key pair (DeleteKeyPair of a missing one succeeds) and the group (none
        when making the access failed half way)."""
        self._call("delete_key_pair", KeyName=name)
        if group_id:
            self._call("delete_security_group", GroupId=group_id)

    def _instance(self, instance_id: str) -> dict[str, Any]:
        r = self._call("describe_instances", InstanceIds=[instance_id])
        return dict(r["Reservations"][0]["Instances"][0])

    def _state(self, instance_id: str, want: str) -> dict[str, Any] | None:
        inst = self._instance(instance_id)
        name = inst["State"]["Name"]
        if name == "terminated" and want != "terminated":
            reason = inst.get("StateReason", {}).get("Message", "")
            raise KilnError(errors.IncorrectState, f"{instance_id} terminated: {reason}")
        return inst if name == want else None

    def launch(self, req: LaunchRequest) -> Launched:
        kwargs: dict[str, Any] = {
            "ImageId": req.image_id,
            "InstanceType": req.instance_type,
            "KeyName": req.key_name,
            "SecurityGroupIds": [req.group_id],
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in req.tags.items()],
                }
            ],
        }
        if req.block_devices:
            kwargs["BlockDeviceMappings"] = [
                {
                    "DeviceName": device,
                    "Ebs": {
                        k: v
                        for k, v in (
                            ("VolumeSize", size),
                            ("VolumeType", vtype),
                            ("DeleteOnTermination", delete),
                        )
                        if v is not None
                    },
                }
                for device, size, vtype, delete in req.block_devices
            ]
        iid = str(self._call("run_instances", **kwargs)["Instances"][0]["InstanceId"])
        inst = self._until(f"{iid} running", lambda: self._state(iid, "running"))
        ready = f"KILN-READY instance-id={iid}"
        self._until(
            f"{iid} {ready}",
            lambda: ready in (self._call("get_console_output", InstanceId=iid).get("Output") or ""),
        )
        dns = str(inst.get("PublicDnsName") or "")
        if ":" in dns:  # QEMU user networking: 127.0.0.1:PORT (docs/networks.md)
            host, port = dns.rsplit(":", 1)
            return Launched(iid, host, int(port))
        return Launched(iid, str(inst["PublicIpAddress"]), 22)

    def stop(self, instance_id: str) -> None:
        self._call("stop_instances", InstanceIds=[instance_id])
        self._until(f"{instance_id} stopped", lambda: self._state(instance_id, "stopped"))

    def create_image(self, instance_id: str, name: str, description: str) -> str:
        image = str(
            self._call("create_image", InstanceId=instance_id, Name=name, Description=description)[
                "ImageId"
            ]
        )
        self._wait_image(image, self.region)
        return image

    def _wait_image(self, image_id: str, region: str) -> None:
        def probe() -> bool:
            found = self._call("describe_images", region, ImageIds=[image_id])["Images"]
            state = found[0]["State"] if found else "missing"
            if state in ("failed", "error", "missing", "deregistered"):
                reason = found[0].get("StateReason", {}).get("Message", "") if found else ""
                raise KilnError(errors.IncorrectState, f"{image_id} is {state} {reason}".strip())
            return bool(state == "available")

        self._until(f"{image_id} available", probe)

    def terminate(self, instance_ids: list[str]) -> None:
        self._call("terminate_instances", InstanceIds=instance_ids)
        for iid in instance_ids:
            self._until(f"{iid} terminated", lambda iid=iid: self._state(iid, "terminated"))

    def deregister(self, image_id: str, region: str) -> None:
        found = self._call("describe_images", region, ImageIds=[image_id])["Images"]
        snaps = [
            m["Ebs"]["SnapshotId"]
            for i in found
            for m in i.get("BlockDeviceMappings", [])
            if "Ebs" in m and m["Ebs"].get("SnapshotId")
        ]
        self._call("deregister_image", region, ImageId=image_id)
        for snap in snaps:
            self._call("delete_snapshot", region, SnapshotId=snap)

    def copy_image(
        self, image_id: str, region: str, name: str, description: str, kms_key_id: str | None
    ) -> str:
        kwargs: dict[str, Any] = {
            "SourceImageId": image_id,
            "SourceRegion": self.region,
            "Name": name,
            "Description": description,
        }
        if kms_key_id:
            kwargs |= {"Encrypted": True, "KmsKeyId": kms_key_id}
        copy = str(self._call("copy_image", region, **kwargs)["ImageId"])
        self._wait_image(copy, region)
        return copy

    def share(self, image_id: str, region: str, accounts: tuple[str, ...], public: bool) -> None:
        add: list[dict[str, str]] = [{"UserId": a} for a in accounts]
        if public:
            add.append({"Group": "all"})
        self._call(
            "modify_image_attribute",
            region,
            ImageId=image_id,
            LaunchPermission={"Add": add},
        )

    def tag(self, image_id: str, region: str, tags: dict[str, str]) -> None:
        if tags:
            self._call(
                "create_tags",
                region,
                Resources=[image_id],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )

    def deprecate(self, image_id: str, region: str, when: str) -> None:
        self._call("enable_image_deprecation", region, ImageId=image_id, DeprecateAt=when)

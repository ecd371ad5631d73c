"""Instance handlers: RunInstances, DescribeInstances, DescribeInstanceStatus, Start/Stop/
Reboot/TerminateInstances, GetConsoleOutput, Describe/ModifyInstanceAttribute."""

from __future__ import annotations

from collections.abc import Mapping

from kiln import errors
from kiln.aws.context import RequestContext
from kiln.catalog.instances import InstanceRecord
from kiln.ec2.images import block_devices_in
from kiln.ec2.keypairs import ec2_datetime
from kiln.ec2.tags import (
    Params,
    caller_of,
    dicts,
    filters,
    flag,
    opt_bool,
    opt_int,
    opt_str,
    services_of,
    strs,
    tag_specs,
    tags_out,
)
from kiln.errors import KilnError
from kiln.services.images import create_image as images_from
from kiln.services.instances import describe_instances as describe
from kiln.services.instances import instance_attributes as attrs
from kiln.services.instances import instances as actions
from kiln.services.instances import placement
from kiln.services.instances import run_instances as rules
from kiln.services.instances.access import InstanceView
from kiln.services.instances.instances import StateChange
from kiln.services.instances.placement import InterfaceRequest, MetadataOptionsRequest
from kiln.services.instances.states import code


def _state(name: str) -> dict[str, object]:
    return {"Code": code(name), "Name": name}


def metadata_options_out(i: InstanceRecord) -> dict[str, object]:
    return {
        "State": "applied",
        "HttpTokens": i.metadata_http_tokens,
        "HttpPutResponseHopLimit": i.metadata_hop_limit,
        "HttpEndpoint": i.metadata_http_endpoint,
        "HttpProtocolIpv6": "disabled",
        "InstanceMetadataTags": i.metadata_tags,
    }


def instance_out(v: InstanceView) -> dict[str, object]:
    i = v.instance
    public_ip = describe.public_ip(v)
    reason = (
        {"Code": i.state_reason_code, "Message": i.state_reason_message}
        if i.state_reason_code
        else None
    )
    groups = [{"GroupId": g["GroupId"], "GroupName": g["GroupName"]} for g in i.security_groups]
    private_dns = describe.private_dns(i)
    association = (
        {"PublicIp": public_ip, "PublicDnsName": describe.public_dns(v), "IpOwnerId": "amazon"}
        if public_ip
        else None
    )
    return {
        "InstanceId": i.instance_id,
        "ImageId": i.image_id,
        "State": _state(i.state),
        "PrivateDnsName": private_dns,
        "PublicDnsName": describe.public_dns(v),
        "PublicIpAddress": public_ip,
        "PrivateIpAddress": i.private_ip,
        "VpcId": i.vpc_id,
        "SubnetId": i.subnet_id,
        "StateTransitionReason": i.state_transition_reason or "",
        "StateReason": reason,
        "KeyName": i.key_name,
        "AmiLaunchIndex": i.ami_launch_index,
        "InstanceType": i.instance_type,
        "LaunchTime": ec2_datetime(i.launch_time),
        "Placement": {
            "AvailabilityZone": i.availability_zone,
            "Tenancy": "default",
            "GroupName": "",
        },
        "Monitoring": {"State": "disabled"},
        "Architecture": i.architecture,
        "RootDeviceName": i.root_device_name,
        "RootDeviceType": i.root_device_type,
        "BlockDeviceMappings": [
            {
                "DeviceName": vol.device,
                "Ebs": {
                    "VolumeId": vol.volume_id,
                    "Status": "attached",
                    "AttachTime": ec2_datetime(vol.attach_time),
                    "DeleteOnTermination": bool(vol.delete_on_termination),
                },
            }
            for vol in v.volumes
        ],
        "ProductCodes": [
            {"ProductCodeId": p.product_code_id, "ProductCodeType": p.product_code_type}
            for p in i.product_codes
        ],
        "ClientToken": i.client_token or "",
        "EbsOptimized": i.ebs_optimized,
        "Hypervisor": "xen",
        "VirtualizationType": "paravirtual" if v.kernel_id else "hvm",
        "KernelId": v.kernel_id,
        "RamdiskId": v.ramdisk_id,
        "SourceDestCheck": True,
        "SecurityGroups": groups,
        "Tags": tags_out(i.tags),
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "CpuOptions": {"CoreCount": i.vcpus, "ThreadsPerCore": 1},
        "BootMode": "legacy-bios",
        "CurrentInstanceBootMode": "legacy-bios",
        "MetadataOptions": metadata_options_out(i),
        "NetworkInterfaces": [
            {
                "NetworkInterfaceId": describe.eni_id(i),
                "Attachment": {
                    "AttachmentId": "eni-attach-" + describe.eni_id(i).removeprefix("eni-"),
                    "DeviceIndex": 0,
                    "Status": "attached",
                    "AttachTime": ec2_datetime(i.launch_time),
                    "DeleteOnTermination": True,
                    "NetworkCardIndex": 0,
                },
                "Description": "",
                "Groups": groups,
                "MacAddress": i.mac_address,
                "OwnerId": i.owner_id,
                "PrivateDnsName": private_dns,
                "PrivateIpAddress": i.private_ip,
                "PrivateIpAddresses": [
                    {
                        "Primary": True,
                        "PrivateIpAddress": i.private_ip,
                        "PrivateDnsName": private_dns,
                        "Association": association,
                    }
                ],
                "Status": "in-use",
                "SourceDestCheck": True,
                "SubnetId": i.subnet_id,
                "VpcId": i.vpc_id,
                "InterfaceType": "interface",
                "Association": association,
            }
        ],
    }


def _changes(key: str, changes: list[StateChange]) -> Mapping[str, object]:
    return {
        key: [
            {
                "InstanceId": c.instance_id,
                "CurrentState": _state(c.current),
                "PreviousState": _state(c.previous),
            }
            for c in changes
        ]
    }


def _ids(params: Params) -> tuple[str, ...]:
    ids = strs(params.get("InstanceIds"))
    if not ids:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    return ids


def _interface_in(n: Mapping[str, object]) -> InterfaceRequest:
    return InterfaceRequest(
        device_index=opt_int(n, "DeviceIndex"),
        subnet_id=opt_str(n, "SubnetId") or None,
        group_ids=strs(n.get("Groups")),
        private_ip=opt_str(n, "PrivateIpAddress") or None,
        associate_public_ip=opt_bool(n, "AssociatePublicIpAddress"),
        network_interface_id=opt_str(n, "NetworkInterfaceId"),
    )


def metadata_options_in(value: object) -> MetadataOptionsRequest:
    m: Mapping[str, object] = value if isinstance(value, Mapping) else {}
    return MetadataOptionsRequest(
        http_tokens=opt_str(m, "HttpTokens"),
        hop_limit=opt_int(m, "HttpPutResponseHopLimit"),
        http_endpoint=opt_str(m, "HttpEndpoint"),
        instance_metadata_tags=opt_str(m, "InstanceMetadataTags"),
        http_protocol_ipv6=opt_str(m, "HttpProtocolIpv6"),
    )


def modify_instance_metadata_options(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    instance_id = opt_str(params, "InstanceId")
    if not instance_id:
        raise KilnError(
            errors.MissingParameter, "The request must contain the parameter InstanceId"
        )
    inst = placement.modify_instance_metadata_options(
        services_of(ctx),
        caller_of(ctx),
        instance_id,
        metadata_options_in(params),
        flag(params, "DryRun"),
    )
    out = metadata_options_out(inst)
    out["State"] = "pending"  # as on EC2: "applied" once the guest sees it (DescribeInstances)
    return {"InstanceId": inst.instance_id, "InstanceMetadataOptions": out}


def run_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    placement = params.get("Placement")
    shutdown = opt_str(params, "InstanceInitiatedShutdownBehavior")
    req = rules.RunInstancesRequest(
        image_id=opt_str(params, "ImageId"),
        min_count=opt_int(params, "MinCount"),
        max_count=opt_int(params, "MaxCount"),
        instance_type=opt_str(params, "InstanceType"),
        key_name=opt_str(params, "KeyName"),
        user_data=opt_str(params, "UserData"),
        block_devices=block_devices_in(params.get("BlockDeviceMappings")),
        tag_specs=tag_specs(params),
        security_groups=strs(params.get("SecurityGroups")),
        security_group_ids=strs(params.get("SecurityGroupIds")),
        subnet_id=opt_str(params, "SubnetId") or None,
        private_ip=opt_str(params, "PrivateIpAddress") or None,
        interfaces=tuple(_interface_in(n) for n in dicts(params.get("NetworkInterfaces"))),
        metadata_options=metadata_options_in(params.get("MetadataOptions")),
        # Go's SDK (Packer) sends the empty strings of fields it set to nothing: EC2 takes
        # them as absent.
        availability_zone=(opt_str(placement, "AvailabilityZone") or None)
        if isinstance(placement, Mapping)
        else None,
        disable_api_termination=flag(params, "DisableApiTermination"),
        shutdown_behavior=shutdown,
        client_token=opt_str(params, "ClientToken"),
        ebs_optimized=flag(params, "EbsOptimized"),
        dry_run=flag(params, "DryRun"),
    )
    r = rules.run_instances(services_of(ctx), caller_of(ctx), req)
    return {
        "ReservationId": r.reservation_id,
        "OwnerId": r.owner_id,
        "Groups": r.groups,
        "Instances": [instance_out(v) for v in r.instances],
    }


def describe_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    res = describe.describe_instances(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("InstanceIds")),
        filters(params),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )
    return {
        "Reservations": [
            {
                "ReservationId": r.reservation_id,
                "OwnerId": r.owner_id,
                "Groups": r.groups,
                "Instances": [instance_out(v) for v in r.instances],
            }
            for r in res.reservations
        ],
        "NextToken": res.next_token,
    }


def describe_instance_status(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    found, token = describe.describe_instance_status(
        services_of(ctx),
        caller_of(ctx),
        strs(params.get("InstanceIds")),
        filters(params),
        flag(params, "IncludeAllInstances"),
        opt_int(params, "MaxResults"),
        opt_str(params, "NextToken"),
        flag(params, "DryRun"),
    )

    def summary(status: str) -> dict[str, object]:
        reach = {"ok": "passed", "initializing": "initializing"}.get(status, "not-applicable")
        return {
            "Status": status,
            "Details": [{"Name": "reachability", "Status": reach}]
            if status != "not-applicable"
            else None,
        }

    return {
        "InstanceStatuses": [
            {
                "InstanceId": s.view.instance.instance_id,
                "AvailabilityZone": s.view.instance.availability_zone,
                "InstanceState": _state(s.view.instance.state),
                "SystemStatus": summary(s.system_status),
                "InstanceStatus": summary(s.instance_status),
            }
            for s in found
        ],
        "NextToken": token,
    }


def start_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _changes(
        "StartingInstances",
        actions.start_instances(
            services_of(ctx), caller_of(ctx), _ids(params), flag(params, "DryRun")
        ),
    )


def stop_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _changes(
        "StoppingInstances",
        actions.stop_instances(
            services_of(ctx),
            caller_of(ctx),
            _ids(params),
            flag(params, "Force"),
            flag(params, "Hibernate"),
            flag(params, "DryRun"),
        ),
    )


def terminate_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    return _changes(
        "TerminatingInstances",
        actions.terminate_instances(
            services_of(ctx), caller_of(ctx), _ids(params), flag(params, "DryRun")
        ),
    )


def reboot_instances(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    actions.reboot_instances(services_of(ctx), caller_of(ctx), _ids(params), flag(params, "DryRun"))
    return {}


def get_console_output(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    out = describe.get_console_output(
        services_of(ctx), caller_of(ctx), opt_str(params, "InstanceId"), flag(params, "DryRun")
    )
    return {
        "InstanceId": out.instance_id,
        "Output": out.output,
        "Timestamp": ec2_datetime(out.timestamp),
    }


def _value(params: Params, key: str) -> object:
    v = params.get(key)
    return v.get("Value") if isinstance(v, Mapping) else None


def describe_instance_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attribute = opt_str(params, "Attribute")
    view = attrs.describe_instance_attribute(
        services_of(ctx),
        caller_of(ctx),
        opt_str(params, "InstanceId"),
        attribute,
        flag(params, "DryRun"),
    )
    i = view.instance
    out: dict[str, object] = {"InstanceId": i.instance_id}
    simple: dict[str, tuple[str, object]] = {
        "instanceType": ("InstanceType", i.instance_type),
        "userData": ("UserData", i.user_data),
        "disableApiTermination": ("DisableApiTermination", i.disable_api_termination),
        "instanceInitiatedShutdownBehavior": (
            "InstanceInitiatedShutdownBehavior",
            i.shutdown_behavior,
        ),
        "rootDeviceName": ("RootDeviceName", i.root_device_name),
        "sourceDestCheck": ("SourceDestCheck", True),
        "ebsOptimized": ("EbsOptimized", i.ebs_optimized),
        "enaSupport": ("EnaSupport", False),
        "disableApiStop": ("DisableApiStop", False),
        "kernel": ("KernelId", view.kernel_id),
        "ramdisk": ("RamdiskId", view.ramdisk_id),
        "sriovNetSupport": ("SriovNetSupport", None),
    }
    if attribute in simple:
        key, value = simple[attribute]
        out[key] = {"Value": value} if value is not None else {}
    elif attribute == "blockDeviceMapping":
        out["BlockDeviceMappings"] = instance_out(view)["BlockDeviceMappings"]
    elif attribute == "groupSet":
        out["Groups"] = i.security_groups
    elif attribute == "productCodes":
        out["ProductCodes"] = instance_out(view)["ProductCodes"]
    elif attribute == "enclaveOptions":
        out["EnclaveOptions"] = {"Enabled": False}
    return out


def modify_instance_attribute(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    attribute = opt_str(params, "Attribute")
    legacy = opt_str(params, "Value")
    itype = _value(params, "InstanceType")
    user_data = _value(params, "UserData")
    dat = _value(params, "DisableApiTermination")
    behaviour = _value(params, "InstanceInitiatedShutdownBehavior")
    if legacy is not None:
        itype = legacy if attribute == "instanceType" else itype
        behaviour = legacy if attribute == "instanceInitiatedShutdownBehavior" else behaviour
        if attribute == "disableApiTermination":
            dat = legacy.lower() == "true"
        if attribute == "userData":
            user_data = legacy.encode()
    dot = tuple(
        (opt_str(m, "DeviceName") or "", bool(opt_bool(e, "DeleteOnTermination")))
        for m in dicts(params.get("BlockDeviceMappings"))
        for e in [m.get("Ebs")]
        if isinstance(e, Mapping)
    )
    others = [
        k
        for k in (
            "SourceDestCheck",
            "Groups",
            "EbsOptimized",
            "SriovNetSupport",
            "EnaSupport",
            "Kernel",
            "Ramdisk",
            "EnclaveOptions",
            "DisableApiStop",
        )
        if k in params
    ]
    known = (
        "instanceType",
        "userData",
        "disableApiTermination",
        "instanceInitiatedShutdownBehavior",
        None,
    )
    unsupported = others[0] if others else (attribute if attribute not in known else None)
    req = attrs.ModifyInstanceAttributeRequest(
        instance_id=opt_str(params, "InstanceId"),
        instance_type=itype if isinstance(itype, str) else None,
        user_data=user_data if isinstance(user_data, bytes) else None,
        disable_api_termination=dat if isinstance(dat, bool) else None,
        shutdown_behavior=behaviour if isinstance(behaviour, str) else None,
        delete_on_termination=dot,
        unsupported=unsupported,
        dry_run=flag(params, "DryRun"),
    )
    attrs.modify_instance_attribute(services_of(ctx), caller_of(ctx), req)
    return {}


def create_image(ctx: RequestContext, params: Params) -> Mapping[str, object]:
    req = images_from.CreateImageRequest(
        instance_id=opt_str(params, "InstanceId"),
        name=opt_str(params, "Name"),
        description=opt_str(params, "Description"),
        no_reboot=flag(params, "NoReboot"),
        tag_specs=tag_specs(params),
        dry_run=flag(params, "DryRun"),
    )
    return {"ImageId": images_from.create_image(services_of(ctx), caller_of(ctx), req)}

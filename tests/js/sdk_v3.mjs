// The AWS SDK for JavaScript v3 against a live `kiln serve`, as a Node program written for AWS
// would use it: default credential chain from the environment, region per client, waiters,
// paginators, typed errors. Prints one JSON document of what it saw; tests/api/test_api_js_sdk.py
// asserts on it. Usage: KILN_URL=… KILN_SNAPSHOT=snap-… AWS_ACCESS_KEY_ID=… node sdk_v3.mjs
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceTypesCommand,
  DescribeRegionsCommand,
  DisableImageCommand,
  EC2Client,
  RegisterImageCommand,
  paginateDescribeImages,
  waitUntilImageAvailable,
} from "@aws-sdk/client-ec2";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

const endpoint = process.env.KILN_URL;
const snapshotId = process.env.KILN_SNAPSHOT;
const home = "us-east-1";
const ec2 = new EC2Client({ endpoint, region: home, maxAttempts: 1 });
const west = new EC2Client({ endpoint, region: "us-west-2", maxAttempts: 1 });
const out = {};

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
}

const sts = new STSClient({ endpoint, region: home, maxAttempts: 1 });
out.account = (await sts.send(new GetCallerIdentityCommand({}))).Account;

out.regions = (await west.send(new DescribeRegionsCommand({}))).Regions.map((r) => r.RegionName);
out.zones = (await west.send(new DescribeAvailabilityZonesCommand({}))).AvailabilityZones.map(
  (z) => z.ZoneName,
);
const types = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ["t3.micro"] }));
out.t3micro = types.InstanceTypes.map((t) => [t.VCpuInfo.DefaultVCpus, t.MemoryInfo.SizeInMiB]);

const names = [];
for (const n of [1, 2, 3, 4, 5, 6]) {
  const made = await ec2.send(
    new RegisterImageCommand({
      Name: `js-sdk-${process.pid}-${n}`,
      RootDeviceName: "/dev/xvda",
      VirtualizationType: "hvm",
      BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: snapshotId } }],
    }),
  );
  names.push(made.ImageId);
}
out.registered = names;
await waitUntilImageAvailable({ client: ec2, maxWaitTime: 120 }, { ImageIds: names });
await ec2.send(
  new CreateTagsCommand({ Resources: names, Tags: [{ Key: "Made", Value: "js-sdk" }] }),
);
const pages = [];
for await (const page of paginateDescribeImages(
  { client: ec2, pageSize: 5 },
  { Owners: ["self"], Filters: [{ Name: "tag:Made", Values: ["js-sdk"] }] },
)) {
  pages.push(page.Images.map((i) => [i.ImageId, i.State]));
}
out.pages = pages;

const copied = await west.send(
  new CopyImageCommand({ SourceImageId: names[0], SourceRegion: home, Name: "js-sdk-copy" }),
);
await waitUntilImageAvailable(
  { client: west, maxWaitTime: 300 },
  { ImageIds: [copied.ImageId] },
);
const copy = (await west.send(new DescribeImagesCommand({ ImageIds: [copied.ImageId] })))
  .Images[0];
out.copy = { id: copy.ImageId, state: copy.State, name: copy.Name };

out.notFound = await failure(
  ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0"] })),
);
out.malformed = await failure(ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-x"] })));
out.dryRun = await failure(ec2.send(new DisableImageCommand({ ImageId: names[0], DryRun: true })));

const ssm = new SSMClient({ endpoint, region: home, maxAttempts: 1 });
await ssm.send(
  new PutParameterCommand({ Name: "/js/golden", Value: names[1], Type: "String", DataType: "aws:ec2:image" }),
);
out.parameter = (await ssm.send(new GetParameterCommand({ Name: "/js/golden" }))).Parameter.Value;
out.parameterMissing = await failure(ssm.send(new GetParameterCommand({ Name: "/js/nothing" })));

for (const id of names) {
  await ec2.send(new DeregisterImageCommand({ ImageId: id }));
}
await west.send(new DeregisterImageCommand({ ImageId: copied.ImageId }));
out.left = (
  await ec2.send(
    new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag:Made", Values: ["js-sdk"] }] }),
  )
).Images.length;

console.log(JSON.stringify(out));

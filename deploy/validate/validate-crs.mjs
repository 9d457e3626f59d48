// Validates custom resources against their CRD schemas, offline (the schemas ship in the npm packages).
// Reads a JSON array of manifests on stdin; prints a JSON array of {kind, name, error} (error null when valid).
// Exits 2 on a kind it has no schema for, so an unchecked resource never passes silently.
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { FlinkDeployment, FlinkSessionJob } from "@kubernetes-models/flink/flink.apache.org/v1beta1";

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "flink.apache.org/v1beta1/FlinkDeployment": FlinkDeployment,
  "flink.apache.org/v1beta1/FlinkSessionJob": FlinkSessionJob,
};

let input = "";
for await (const chunk of process.stdin) input += chunk;

const results = [];
for (const manifest of JSON.parse(input)) {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const Model = MODELS[key];
  if (!Model) {
    console.error(`no CRD schema for ${key}; known: ${Object.keys(MODELS).join(", ")}`);
    process.exit(2);
  }
  let error = null;
  try {
    new Model(manifest).validate();
  } catch (exc) {
    error = exc.message;
  }
  results.push({ kind: manifest.kind, name: manifest.metadata?.name ?? null, error });
}
console.log(JSON.stringify(results));

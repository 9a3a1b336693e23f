import { boolField, decodeFields, encodeMessage, messageField, stringField } from './grpcProtobuf.js';

/**
 * The CRI messages the runtime probe sends and reads, with the field numbers of
 * k8s.io/cri-api pkg/apis/runtime/v1/api.proto (package runtime.v1). Fields it does not read
 * (StatusResponse's info, runtime_handlers, features) are skipped.
 */
export const criMethods = {
  status: '/runtime.v1.RuntimeService/Status',
  version: '/runtime.v1.RuntimeService/Version',
} as const;

/** The CRI API version the kubelet sends in VersionRequest. */
export const CRI_API_VERSION = 'v1';

export interface RuntimeCondition {
  /** `RuntimeReady` or `NetworkReady` (the CRI's required two), or a runtime's own. */
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface RuntimeVersion {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** StatusRequest{verbose = 1}: not verbose, so the reply carries no `info` map (containerd's is its whole config). */
export function encodeStatusRequest(): Buffer {
  return encodeMessage([]);
}

/** VersionRequest{version = 1}. */
export function encodeVersionRequest(version: string = CRI_API_VERSION): Buffer {
  return encodeMessage([[1, version]]);
}

/**
 * StatusResponse{status = 1: RuntimeStatus{conditions = 1: repeated RuntimeCondition}}. An
 * absent status is proto3's empty one: no conditions, which the probe reports as not ready.
 */
export function decodeStatusResponse(bytes: Buffer): RuntimeCondition[] {
  let status: Buffer = Buffer.alloc(0);
  for (const field of decodeFields(bytes)) {
    if (field.field === 1) status = messageField(field, 'StatusResponse');
  }
  const conditions: RuntimeCondition[] = [];
  for (const field of decodeFields(status)) {
    if (field.field === 1) conditions.push(decodeRuntimeCondition(messageField(field, 'RuntimeStatus')));
  }
  return conditions;
}

/** RuntimeCondition{type = 1, status = 2, reason = 3, message = 4}; absent fields are proto3 defaults. */
function decodeRuntimeCondition(bytes: Buffer): RuntimeCondition {
  const condition: RuntimeCondition = { type: '', status: false, reason: '', message: '' };
  for (const field of decodeFields(bytes)) {
    if (field.field === 1) condition.type = stringField(field, 'RuntimeCondition');
    else if (field.field === 2) condition.status = boolField(field, 'RuntimeCondition');
    else if (field.field === 3) condition.reason = stringField(field, 'RuntimeCondition');
    else if (field.field === 4) condition.message = stringField(field, 'RuntimeCondition');
  }
  return condition;
}

/** VersionResponse{version = 1, runtime_name = 2, runtime_version = 3, runtime_api_version = 4}. */
export function decodeVersionResponse(bytes: Buffer): RuntimeVersion {
  const version: RuntimeVersion = { version: '', runtimeName: '', runtimeVersion: '', runtimeApiVersion: '' };
  const names = [undefined, 'version', 'runtimeName', 'runtimeVersion', 'runtimeApiVersion'] as const;
  for (const field of decodeFields(bytes)) {
    const name = names[field.field];
    if (name) version[name] = stringField(field, 'VersionResponse');
  }
  return version;
}

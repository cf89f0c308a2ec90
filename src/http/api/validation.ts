// Input validation for /api/v1. Bodies are checked strictly (no type coercion: Quay's jsonschema
// rejects "123" for an integer and 123 for a string), querystrings and path params are coerced
// because they only ever arrive as text. Failures read like Python jsonschema's first line, plus
// the field, because Quay clients show `detail` to people.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import { ApiError } from './errors.ts';

// ajv-formats is CommonJS: under Node's ESM loader its default export is the plugin itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    // TypeBox annotations (and our x-* discovery hints) are not Ajv keywords.
    strict: false,
    verbose: true,
  });
  addFormats(ajv);
  return ajv;
}

const bodyAjv = makeAjv(false);
const textAjv = makeAjv(true);

export const MISSING_BODY = 'Missing JSON body';

/** Fastify validator compiler for the API plugin: every failure becomes a 400 invalid_request ApiError. */
export const apiValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const isBody = httpPart === 'body';
  const validate: ValidateFunction = (isBody ? bodyAjv : textAjv).compile(schema as object);
  return (data: unknown) => {
    if (isBody && (data === undefined || data === null)) return { error: new ApiError('invalid_request', MISSING_BODY) };
    if (validate(data)) return { value: data };
    return { error: new ApiError('invalid_request', describeError(validate.errors?.[0], data)) };
  };
};

/** Python-style repr, so messages match what Quay's jsonschema produced for the same input. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

function fieldPath(instancePath: string): string {
  return instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

export function describeError(err: ErrorObject | undefined, root: unknown): string {
  if (!err) return 'Invalid request';
  const p = err.params as Record<string, unknown>;
  const value = err.instancePath === '' ? root : err.data;
  const where = fieldPath(err.instancePath);
  let msg: string;
  switch (err.keyword) {
    case 'required':
      msg = `${pyRepr(p.missingProperty)} is a required property`;
      return where ? `${msg} (field '${where}')` : msg;
    case 'additionalProperties':
      msg = `Additional properties are not allowed (${pyRepr(p.additionalProperty)} was unexpected)`;
      return where ? `${msg} (field '${where}')` : msg;
    case 'type': {
      const types = String(p.type).split(',').map((t) => `'${t}'`).join(', ');
      msg = `${pyRepr(value)} is not of type ${types}`;
      break;
    }
    case 'minLength': msg = `${pyRepr(value)} is too short`; break;
    case 'maxLength': msg = `${pyRepr(value)} is too long`; break;
    case 'minimum': msg = `${pyRepr(value)} is less than the minimum of ${p.limit}`; break;
    case 'maximum': msg = `${pyRepr(value)} is greater than the maximum of ${p.limit}`; break;
    case 'enum': msg = `${pyRepr(value)} is not one of ${pyRepr(p.allowedValues)}`; break;
    case 'const': msg = `${pyRepr(p.allowedValue)} was expected`; break;
    case 'pattern': msg = `${pyRepr(value)} does not match ${pyRepr(p.pattern)}`; break;
    case 'format': msg = `${pyRepr(value)} is not a ${pyRepr(p.format)}`; break;
    case 'minItems': msg = `${pyRepr(value)} is too short`; break;
    case 'maxItems': msg = `${pyRepr(value)} is too long`; break;
    case 'anyOf': case 'oneOf': msg = `${pyRepr(value)} is not valid under any of the given schemas`; break;
    default: msg = `${pyRepr(value)} ${err.message ?? 'is invalid'}`;
  }
  return where ? `${msg} (field '${where}')` : msg;
}

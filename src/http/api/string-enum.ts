// A string enum written the way Quay's schemas write it ({"type": "string", "enum": [...]}), so a
// wrong value fails with jsonschema's "'x' is not one of [...]" rather than an anyOf mismatch.
import { Type, type TSchema, type TUnsafe } from 'typebox';

export function StringEnum<T extends string>(values: readonly T[], description: string): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], description } as unknown as TSchema);
}

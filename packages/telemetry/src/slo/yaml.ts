/**
 * A minimal YAML emitter for the rule files this package writes: maps, lists,
 * numbers and strings. Strings are double-quoted (JSON escapes are valid YAML),
 * multi-line strings become literal blocks (`|-`), so PromQL keeps its layout
 * and no value is ever read back as another type (`"2"`, `"yes"`, `"1e3"`).
 */

export type YamlValue = string | number | boolean | readonly YamlValue[] | { readonly [key: string]: YamlValue | undefined };

/** `value` as a YAML document (no leading `---`), ending in a newline. */
export function toYaml(value: YamlValue): string {
  return `${emit(value, 0).join('\n')}\n`;
}

function emit(value: YamlValue, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${pad}[]`];
    return (value as readonly YamlValue[]).flatMap((item) => {
      const lines = isCollection(item) ? emit(item, indent + 2) : [`${pad}  ${scalar(item, indent + 2)}`];
      const first = lines[0] ?? '';
      return [`${pad}- ${first.slice(indent + 2)}`, ...lines.slice(1)];
    });
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, YamlValue | undefined>).filter((e): e is [string, YamlValue] => e[1] !== undefined);
    if (entries.length === 0) return [`${pad}{}`];
    return entries.flatMap(([key, item]) => {
      const k = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
      if (isCollection(item) && !isEmpty(item)) return [`${pad}${k}:`, ...emit(item, Array.isArray(item) ? indent : indent + 2)];
      return [`${pad}${k}: ${isCollection(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item, indent + 2)}`];
    });
  }
  return [`${pad}${scalar(value, indent)}`];
}

function scalar(value: YamlValue, indent: number): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`yaml: cannot write ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return String(value);
  const text = value as string;
  // A literal block keeps PromQL readable; its first line must not start with a space or the indent is misread.
  if (text.includes('\n') && !/^\s/.test(text) && !/[ \t]$/m.test(text) && !text.includes('\r')) {
    const pad = ' '.repeat(indent);
    return `|-\n${text.split('\n').map((line) => (line === '' ? '' : pad + line)).join('\n')}`;
  }
  return JSON.stringify(text);
}

function isCollection(value: YamlValue): value is readonly YamlValue[] | { readonly [key: string]: YamlValue | undefined } {
  return typeof value === 'object';
}

function isEmpty(value: readonly YamlValue[] | { readonly [key: string]: YamlValue | undefined }): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.values(value).every((v) => v === undefined);
}

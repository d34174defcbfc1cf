/**
 * collectRepeatable: commander's accumulator for a flag given several times
 * (`--conf a=1 --conf b=2`). In lib/ because every command definition uses it, those
 * of `flint master` and `flint worker` (functions/, workers/) included, and they must
 * not import from cli/.
 */
export function collectRepeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}

// Parsers for numeric CLI options: a bad value is a one-line error naming the option.

import { InvalidArgumentError } from 'commander';

export function intOption(name: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

export function floatOption(name: string, min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

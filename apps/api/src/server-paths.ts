import { readdirSync } from 'node:fs';
import { basename, resolve } from 'node:path';

// What a path may hold in a message: it ends at white space, quotes, brackets, commas and semicolons.
const PATH = String.raw`[^\s'"\`()<>\[\]{},;]`;
// Not inside a word, a relative path or a URL ('http://host/…').
const START = String.raw`(?<![\w.~:/-])`;

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Hides the server's file layout in what a client reads: each of the server's paths becomes its base name (the
 * file the client sent or named keeps its name; the artifact dir, staging folders, the working dir and the home
 * folder vanish). A path is the server's when it lies under one of `folders` (as configured, relative or not) or
 * when it is absolute and its first component exists at this machine's root (`/tmp/…`, `/home/…`), so that a
 * route such as `/v1/jobs` in a message is left alone.
 */
export function serverPathHider(folders: readonly string[]): (text: string) => string {
  const known = [...new Set(folders.flatMap((f) => [f, resolve(f)]))]
    .filter((f) => f !== '.' && f !== '/')
    .sort((a, b) => b.length - a.length);
  const under = new RegExp(`${START}(?:${known.map(literal).join('|')})(?:/${PATH}*)?`, 'g');
  const absolute = new RegExp(`${START}/${PATH}+`, 'g');
  const roots = new Set(readdirSync('/'));
  return (text) =>
    (known.length > 0 ? text.replace(under, (path) => basename(path)) : text).replace(absolute, (path) =>
      roots.has(path.split('/')[1]!) ? basename(path) : path,
    );
}

import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares two secrets in constant time; hashing first gives equal-length buffers whatever the inputs. */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

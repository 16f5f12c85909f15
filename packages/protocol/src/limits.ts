/** Value rules every side checks the same way; plain regular expressions, so browsers can use them too. */
/** userId: 1–128 characters of `A-Z a-z 0-9 . _ ~ @ -`. */
export const USER_ID_PATTERN = '^[A-Za-z0-9._~@-]{1,128}$';
const USER_ID_REGEX = new RegExp(USER_ID_PATTERN);
export const MESSAGE_ID_MAX_LENGTH = 64;

export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && USER_ID_REGEX.test(value);
}

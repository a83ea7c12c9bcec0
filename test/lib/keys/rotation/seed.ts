import { randomUUID } from 'node:crypto';
import type { Database } from '../../../../db/client.js';
import type { Tokenizer } from '../../../../lib/crypto/tokens.js';
import { vaultAad } from '../../../../lib/crypto/vault-context.js';
import type { DataKeyRing } from '../../../../lib/keys/data-key-ring.js';

export interface Login {
  messageId: string;
  ip: string;
  deviceId: string;
}

/** `count` logins drawn from small pools of values, so most values repeat (as in real traffic). */
export function makeLogins(count: number, distinctIps: number, distinctDevices: number, seed = 0): Login[] {
  return Array.from({ length: count }, (_, i) => {
    const ip = (i * 7 + seed) % distinctIps;
    const device = (i * 11 + seed) % distinctDevices;
    return {
      messageId: randomUUID(),
      ip: `10.${seed % 250}.${Math.floor(ip / 250)}.${ip % 250}`,
      deviceId: `${String(100 + seed).slice(-3)}-${String(device % 100).padStart(2, '0')}-${String(device).padStart(4, '0')}`,
    };
  });
}

export const LOGIN_ROW = { userId: 'u', deviceType: 'ios', locale: 'RU', appVersion: '2.3.0', createDate: '2024-05-01', sentAt: '2024-05-01T10:00:00.000Z' } as const;

/**
 * Writes logins the way the ingestor stores them: tokens in user_logins (tagged, unless
 * `tagged` is false: a row from before row authentication), each distinct value once in the
 * vault, encrypted with a data key and bound to its token. Every row's user_id is its message id.
 */
export async function writeLogins(database: Database, ring: DataKeyRing, tokenizer: Tokenizer, logins: Login[], tagged = true): Promise<void> {
  for (const login of logins) {
    const ipToken = tokenizer.tokenize('ip', login.ip);
    const deviceToken = tokenizer.tokenize('device_id', login.deviceId);
    if (ipToken === undefined || deviceToken === undefined) throw new Error('seed value is not valid');
    for (const [field, token, value] of [
      ['ip', ipToken, login.ip],
      ['device_id', deviceToken, login.deviceId],
    ] as const) {
      const { dataKeyId, ciphertext } = await ring.encrypt(Buffer.from(value), vaultAad(token));
      await database.pool.query(
        `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (token) DO NOTHING`,
        [token, field, ciphertext, dataKeyId, tokenizer.keyVersion],
      );
    }
    const mac = tagged
      ? tokenizer.rowMac.tag({
          messageId: login.messageId,
          userId: login.messageId,
          createDate: LOGIN_ROW.createDate,
          sentAtMs: Date.parse(LOGIN_ROW.sentAt),
          deviceType: LOGIN_ROW.deviceType,
          locale: LOGIN_ROW.locale,
          appVersion: LOGIN_ROW.appVersion,
          ipToken,
          deviceIdToken: deviceToken,
        })
      : null;
    await database.pool.query(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                                create_date, sent_at, token_key_version, row_mac, row_mac_key_version)
       VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [login.messageId, LOGIN_ROW.deviceType, ipToken, deviceToken, LOGIN_ROW.locale, LOGIN_ROW.appVersion, LOGIN_ROW.createDate, LOGIN_ROW.sentAt, tokenizer.keyVersion, mac, mac === null ? null : tokenizer.keyVersion],
    );
  }
}

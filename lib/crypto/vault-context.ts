/**
 * Additional authenticated data for values sealed under vault data keys. Binding the token
 * (which names the field) means a ciphertext copied to another vault row, or a quarantined
 * body moved to another message, fails to decrypt instead of revealing the wrong value.
 */
export function vaultAad(token: string): Buffer {
  return Buffer.from(`tokenvault/vault/${token}`, 'utf8');
}

export function quarantineAad(messageId: string): Buffer {
  return Buffer.from(`tokenvault/quarantine/${messageId}`, 'utf8');
}

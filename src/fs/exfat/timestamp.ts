/**
 * exFAT timestamps: a DOS date and time (2-second resolution, local time),
 * a 10 ms increment (0-199) and a UTC offset byte (bit 7: valid; bits 0-6:
 * signed quarter hours). Without a valid offset the zone is unknown and the
 * time is taken as UTC (as Linux does with its default time_offset of 0).
 */
export function decodeTimestamp(timestamp: number, tenMs: number, utcOffset: number): number {
  const seconds = (timestamp & 0x1f) * 2;
  const minutes = (timestamp >> 5) & 0x3f;
  const hours = (timestamp >> 11) & 0x1f;
  const day = (timestamp >> 16) & 0x1f;
  const month = (timestamp >> 21) & 0x0f;
  const year = 1980 + (timestamp >>> 25);
  let unix = Date.UTC(year, month - 1, day, hours, minutes, seconds) / 1000 + Math.min(tenMs, 199) / 100;
  if (utcOffset & 0x80) {
    const quarters = utcOffset & 0x40 ? (utcOffset & 0x7f) - 0x80 : utcOffset & 0x7f;
    unix -= quarters * 15 * 60;
  }
  return unix;
}

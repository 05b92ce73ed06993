/**
 * Does a 5-field cron expression (UTC) fire in a given minute? The dispatcher runs every minute and fans each
 * tenant's schedules out itself, because cron triggers on user Workers are not generally available. Accepts what
 * orchestrator/cron.py accepts (Cloudflare's syntax): lists, ranges, steps, JAN-DEC, SUN-SAT, 7 = Sunday, and the
 * day extras L, LW, <n>W (day of month), <d>L and <d>#<k> (day of week). Like Vixie cron, when both day fields are
 * restricted a day matching either fires.
 */

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** @param {string} token @param {number} low @param {number} high @param {string[]} names @param {number} offset */
function value(token, low, high, names, offset) {
	const named = names.indexOf(token.toUpperCase());
	const n = named >= 0 ? named + offset : /^\d{1,2}$/.test(token) ? Number(token) : NaN;
	if (!(n >= low && n <= high)) throw new RangeError(`cron: ${token} is outside ${low}-${high}`);
	return n;
}

/** @param {string} part @param {number} low @param {number} high @param {string[]} names @param {number} offset @param {number} v */
function inPart(part, low, high, names, offset, v) {
	const [base, stepText, extra] = part.split('/');
	if (extra !== undefined || (stepText !== undefined && !/^[1-9]\d*$/.test(stepText))) throw new RangeError(`cron: bad step in ${part}`);
	const step = stepText === undefined ? 1 : Number(stepText);
	let start = low;
	let end = high;
	if (base !== '*') {
		const [a, b, more] = base.split('-');
		if (more !== undefined) throw new RangeError(`cron: bad range ${base}`);
		start = value(a, low, high, names, offset);
		end = b !== undefined ? value(b, low, high, names, offset) : stepText !== undefined ? high : start;
	}
	return v >= start && v <= end && (v - start) % step === 0;
}

/** @param {string} field @param {number} low @param {number} high @param {string[]} names @param {number} offset @param {number[]} values */
function matchesAny(field, low, high, names, offset, values) {
	return field.split(',').some((part) => values.some((v) => inPart(part, low, high, names, offset, v)));
}

/** @param {number} year @param {number} month 1-12 */
const daysIn = (year, month) => new Date(Date.UTC(year, month, 0)).getUTCDate();
/** @param {number} year @param {number} month @param {number} day */
const weekday = (year, month, day) => new Date(Date.UTC(year, month - 1, day)).getUTCDay();

/** The weekday (Mon-Fri) nearest to `day`, never leaving the month. @param {number} year @param {number} month @param {number} day */
function nearestWeekday(year, month, day) {
	const last = daysIn(year, month);
	const d = Math.min(day, last);
	const w = weekday(year, month, d);
	if (w === 6) return d === 1 ? 3 : d - 1;
	if (w === 0) return d === last ? d - 2 : d + 1;
	return d;
}

/** @param {string} field @param {Date} at */
function dayOfMonthMatches(field, at) {
	const [y, m, d] = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate()];
	return field.split(',').some((part) => {
		const p = part.toUpperCase();
		if (p === 'L') return d === daysIn(y, m);
		if (p === 'LW') return d === nearestWeekday(y, m, daysIn(y, m));
		const w = /^(\d{1,2})W$/.exec(p);
		if (w) return d === nearestWeekday(y, m, value(w[1], 1, 31, [], 0));
		return inPart(part, 1, 31, [], 0, d);
	});
}

/** @param {string} field @param {Date} at */
function dayOfWeekMatches(field, at) {
	const [y, m, d, wd] = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(), at.getUTCDay()];
	return field.split(',').some((part) => {
		const last = /^(\w+?)L$/i.exec(part);
		if (last) return value(last[1], 0, 7, DAYS, 0) % 7 === wd && d + 7 > daysIn(y, m);
		const nth = /^(\w+)#([1-5])$/.exec(part);
		if (nth) return value(nth[1], 0, 7, DAYS, 0) % 7 === wd && Math.ceil(d / 7) === Number(nth[2]);
		// 7 is Sunday too.
		return inPart(part, 0, 7, DAYS, 0, wd) || (wd === 0 && inPart(part, 0, 7, DAYS, 0, 7));
	});
}

/**
 * @param {string} expression @param {Date} at only its UTC minute counts
 * @throws {RangeError} on an expression orchestrator/cron.py would have refused
 */
export function cronMatches(expression, at) {
	const fields = expression.trim().split(/\s+/);
	if (fields.length !== 5) throw new RangeError(`cron: ${fields.length} fields, not 5`);
	const [minute, hour, dom, month, dow] = fields;
	if (!matchesAny(minute, 0, 59, [], 0, [at.getUTCMinutes()])) return false;
	if (!matchesAny(hour, 0, 23, [], 0, [at.getUTCHours()])) return false;
	if (!matchesAny(month, 1, 12, MONTHS, 1, [at.getUTCMonth() + 1])) return false;
	const domFree = dom.startsWith('*');
	const dowFree = dow.startsWith('*');
	if (domFree && dowFree) return true;
	if (domFree) return dayOfWeekMatches(dow, at);
	if (dowFree) return dayOfMonthMatches(dom, at);
	return dayOfMonthMatches(dom, at) || dayOfWeekMatches(dow, at);
}

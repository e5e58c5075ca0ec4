package feed

import (
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Reasons of the file's own problems, in Details["reason"] beside those of
// syncproto.FeedWarning.Problems (syncproto.ReasonRequired ...).
const (
	ReasonEmpty           = "empty"            // no header
	ReasonBadCSV          = "bad_csv"          // quoting that is not CSV
	ReasonDuplicateColumn = "duplicate_column" // the header names a column twice
	ReasonMissingColumn   = "missing_column"   // the header lacks a required column
	ReasonTooManyRows     = "too_many_rows"    // more than MaxRows
	ReasonCellCount       = "cell_count"       // a row with more or fewer cells than the header
	ReasonNotUTF8         = "not_utf8"         // a cell that is not UTF-8
	ReasonBadTime         = "bad_time"         // a time in no layout ParseTime reads
)

// ColumnNames are the columns as the people who fill in a feed file call
// them.
var ColumnNames = map[string]string{
	ColExternalID: "预警编号", ColName: "姓名", ColPhone: "电话", ColIDTail: "身份证尾号",
	ColAddress: "地址", ColUnit: "单位代码", ColFraudType: "诈骗类型", ColRisk: "风险等级",
	ColWarnedAt: "预警时间", ColDeadline: "处置期限",
}

// column names a column for a person: 预警时间（warned_at）, so the
// column can be found in the file's header.
func column(field string) string {
	if name, ok := ColumnNames[field]; ok {
		return name + "（" + field + "）"
	}
	return field
}

// Explain words a feed problem (a row's, or the file's) in Simplified
// Chinese for the person who fixes the file: what is wrong and how to put
// it right, naming the column, never quoting a cell.
func Explain(e *syncproto.Error) syncproto.FeedProblem {
	field, _ := e.Details["field"].(string)
	reason, _ := e.Details["reason"].(string)
	p := syncproto.FeedProblem{Field: field, Reason: reason}
	col := column(field)
	switch reason {
	case syncproto.ReasonRequired:
		p.Message = col + "不能为空。"
		if field == ColPhone {
			p.Message = "电话（phone）和地址（address）至少要填一项，才能联系到本人。"
		}
	case syncproto.ReasonTooLong:
		p.Message = col + "太长：" + tooLong[field] + "。"
	case syncproto.ReasonInvalid:
		switch field {
		case ColUnit:
			p.Message = col + "应是 4、6、9 或 12 位数字的单位代码。"
		case ColRisk:
			p.Message = col + "应填 高、中、低（或 high、medium、low）。"
		default:
			p.Message = col + "的值不对。"
		}
	case syncproto.ReasonTooEarly:
		p.Message = col + "早于 2000 年 1 月 1 日，应是预警发出的时间。"
	case syncproto.ReasonFuture:
		p.Message = col + "晚于服务器的当前时间，应是已经过去的时间。"
	case syncproto.ReasonBeforeWarnedAt:
		p.Message = col + "早于预警时间（warned_at）。"
	case syncproto.ReasonTooLate:
		p.Message = col + "晚于 9999 年。"
	case ReasonBadTime:
		p.Message = col + "不是可识别的时间：请写北京时间（如 2026-11-27 09:30:00）或带时区的时间（如 2026-11-27T09:30:00+08:00）。"
	case ReasonNotUTF8:
		p.Message = col + "不是 UTF-8 文字：请在表格软件中另存为“CSV UTF-8”后再上传。"
	case ReasonCellCount:
		p.Message = fmt.Sprintf("这一行有 %v 个单元格，表头有 %v 列：含逗号的单元格要用英文双引号括起来。", e.Details["cells"], e.Details["columns"])
	case ReasonBadCSV:
		p.Message = fmt.Sprintf("第 %v 行不是有效的 CSV：含逗号、引号或换行的单元格要用英文双引号括起来，其中的双引号要写两遍。", e.Details["line"])
	case ReasonEmpty:
		p.Message = "文件是空的：第一行应是列名（external_id, name, phone, id_tail, address, unit, fraud_type, risk, warned_at, deadline）。"
	case ReasonDuplicateColumn:
		p.Message = "表头中" + col + "出现了两次。"
	case ReasonMissingColumn:
		p.Message = "表头缺少" + col + "这一列；第一行应写明各列的列名。"
		if field == ColPhone {
			p.Message = "表头既没有电话（phone）也没有地址（address）列，无法联系到本人。"
		}
	case ReasonTooManyRows:
		p.Message = fmt.Sprintf("文件超过 %d 行，请拆分后分批上传。", MaxRows)
	default:
		p.Message = col + "有误。"
		if field == "" {
			p.Message = "这一行有误。"
		}
	}
	return p
}

// tooLong says how long each field may be.
var tooLong = map[string]string{
	ColExternalID: "最多 128 个字节", ColName: "最多 100 个字", ColPhone: "最多 32 个字符",
	ColIDTail: "只填身份证号码的后 8 位以内", ColAddress: "最多 300 个字", ColFraudType: "最多 50 个字",
}

// explainAll returns the first of a row's problems as it was (the
// protocol's error) and every one of them in Chinese.
func explainAll(errs []*syncproto.Error) (*syncproto.Error, []syncproto.FeedProblem) {
	if len(errs) == 0 {
		return nil, nil
	}
	problems := make([]syncproto.FeedProblem, len(errs))
	for i, e := range errs {
		problems[i] = Explain(e)
	}
	return errs[0], problems
}

// Check validates a feed row that came as JSON or MessagePack, as ParseCSV
// does a CSV row's: the first problem as the protocol's error, and every
// problem in Chinese.
func Check(f *syncproto.FeedWarning, now time.Time) (*syncproto.Error, []syncproto.FeedProblem) {
	return explainAll(f.Problems(now))
}

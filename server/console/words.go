package console

import (
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The console's words: every code of the protocol a page or an export
// shows (statuses, roles, op types, results, error codes) is written here
// once, in Simplified Chinese. A page shows the word, never the code; the
// words test walks every page for codes that slipped through.
var (
	statusLabels = map[string]string{
		syncproto.WarningNew: "待分派", syncproto.WarningDispatched: "已下发", syncproto.WarningAssigned: "已指派",
		syncproto.WarningInProgress: "劝阻中", syncproto.WarningResolved: "待审核", syncproto.WarningClosed: "已办结",
	}
	riskLabels    = map[string]string{syncproto.RiskHigh: "高", syncproto.RiskMedium: "中", syncproto.RiskLow: "低"}
	outcomeLabels = map[string]string{
		syncproto.OutcomeDissuaded: "劝阻成功", syncproto.OutcomeAlreadyDefrauded: "已被骗", syncproto.OutcomeNotTarget: "非预警对象",
		syncproto.OutcomeUnreachable: "未联系上", syncproto.OutcomeRefused: "拒绝沟通",
	}
	methodLabels = map[string]string{syncproto.MethodVisit: "上门", syncproto.MethodPhone: "电话", syncproto.MethodVideo: "视频", syncproto.MethodOther: "其他"}
	flagLabels   = map[string]string{
		syncproto.FlagStaleAssignee:       "记录人已不是当前负责人（可能是改派前离线记录的）",
		syncproto.FlagAfterClose:          "办结之后才收到的记录",
		syncproto.FlagConflictingOutcomes: "与之前的劝阻结果不一致",
		syncproto.FlagStaleReview:         "审核时还没有看到最新的劝阻记录",
		syncproto.FlagFutureTime:          "手机时间比服务器快五分钟以上",
	}
	// roleLabels name a user's level by what the people call it.
	roleLabels = map[string]string{
		syncproto.RoleCenter: "市中心", syncproto.RoleCounty: "县区", syncproto.RoleTownship: "乡镇", syncproto.RoleVillage: "村",
	}
	// opLabels name the log's entries for a lead.
	opLabels = map[string]string{
		syncproto.OpCreated: "接收预警", syncproto.OpDispatched: "下发", syncproto.OpAssigned: "指派",
		syncproto.OpRecorded: "劝阻记录", syncproto.OpEscalated: "上报求助", syncproto.OpReviewed: "审核",
		store.EntryPhoto: "收到照片", store.EntryArchived: "从村干部手机移除", store.EntryRedacted: "个人信息已清除",
		syncproto.OpAnswered: "答复求助",
	}
	decisionLabels = map[string]string{syncproto.DecisionApprove: "通过", syncproto.DecisionReturn: "退回"}
	// resultLabels say what became of an op in the history.
	resultLabels = map[string]string{
		syncproto.StatusApplied: "已生效", syncproto.StatusDuplicate: "重复提交（已生效）", syncproto.StatusRejected: "未生效",
	}
	// codeLabels say, after 未生效 or in an error page, why.
	codeLabels = map[string]string{
		syncproto.CodeInvalidRequest:      "内容不完整或有误",
		syncproto.CodeUnsupportedProtocol: "客户端版本不受支持",
		syncproto.CodeUnauthorized:        "未登录或登录已失效",
		syncproto.CodeTokenExpired:        "登录已过期",
		syncproto.CodeDeviceRevoked:       "设备已停用",
		syncproto.CodeForbidden:           "不在您的辖区或权限内",
		syncproto.CodeNotFound:            "没有找到",
		syncproto.CodePayloadTooLarge:     "内容太大",
		syncproto.CodeOutOfOrder:          "提交顺序不对",
		syncproto.CodeCursorExpired:       "同步位置已失效",
		syncproto.CodeRateLimited:         "操作太频繁",
		syncproto.CodeUpgradeRequired:     "需要升级应用",
		syncproto.CodeUnavailable:         "服务器暂时不可用",
		syncproto.CodeTooManyDevices:      "登录设备已达上限",
		syncproto.CodeInternal:            "服务器内部错误",
		syncproto.CodeInvalidState:        "状态不允许",
		syncproto.CodeSeqReused:           "提交序号重复",
		syncproto.CodeWarningFull:         "这条预警的记录已达上限",
		syncproto.CodePhotoQuotaExceeded:  "今日照片已达上限",
	}
	// fieldLabels name a form's or a query's field in an error.
	fieldLabels = map[string]string{
		"unit": "单位", "status": "状态", "risk": "风险", "fraud_type": "诈骗类型", "assignee": "负责人",
		"overdue": "只看逾期", "flagged": "只看有标记", "escalated": "只看待答复的求助", "from": "接收自", "to": "至", "q": "搜索", "sort": "排序",
		"cursor": "页码", "limit": "每页条数", "csrf": "表单", "Origin": "来源", "Content-Type": "表单格式", "body": "表单",
	}
)

// builtinNames are names the server gives itself in English, as people
// read them: the account fieldsyncd init creates is "Administrator".
var builtinNames = map[string]string{"Administrator": "管理员"}

// label looks a code up in m; a code it does not know shows as 未知,
// never as itself, so no English reaches a page by a code added later.
func label(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		if k == "" {
			return ""
		}
		return "未知"
	}
}

// resultText says what became of a logged op: 已生效, or 未生效 and why.
func resultText(r *syncproto.Result) string {
	if r == nil {
		return ""
	}
	text := label(resultLabels)(r.Status)
	if r.Status == syncproto.StatusRejected && r.Code != "" {
		text += "：" + label(codeLabels)(r.Code)
	}
	return text
}

// personName is a person's name as a page shows it.
func personName(name string) string {
	if v, ok := builtinNames[name]; ok {
		return v
	}
	return name
}

func init() {
	funcs["op"] = label(opLabels)
	funcs["status"] = label(statusLabels)
	funcs["risk"] = label(riskLabels)
	funcs["outcome"] = label(outcomeLabels)
	funcs["method"] = label(methodLabels)
	funcs["flag"] = label(flagLabels)
	funcs["role"] = label(roleLabels)
	funcs["decision"] = label(decisionLabels)
	funcs["errcode"] = label(codeLabels)
	funcs["result"] = resultText
	funcs["person"] = personName
}
